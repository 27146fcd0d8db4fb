package org.dbos.server;

import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.dbos.kernel.DataDirectory;
import org.dbos.kernel.Node;
import org.dbos.kernel.NodeConfig;
import org.dbos.server.http.HttpEndpoint;

/**
 * What `dbos up` runs: a kernel node plus its front ends. Front ends only adapt protocols to kernel
 * calls; they start after the node and stop before it.
 */
public final class Server implements AutoCloseable {
  /** Where the front ends listen. A null address leaves that front end off. */
  public record Endpoints(String httpHost, int httpPort) {}

  private final Node node;
  private final HttpEndpoint http;
  private final PrometheusMeterRegistry metrics;

  private Server(Node node, HttpEndpoint http, PrometheusMeterRegistry metrics) {
    this.node = node;
    this.http = http;
    this.metrics = metrics;
  }

  public static Server start(NodeConfig config, Endpoints endpoints) {
    var metrics = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    new JvmMemoryMetrics().bindTo(metrics);
    new JvmThreadMetrics().bindTo(metrics);
    new ProcessorMetrics().bindTo(metrics);
    new JvmGcMetrics().bindTo(metrics);
    // Lock the data directory first (a second node there must hear exactly that), then bind HTTP so
    // its address is known when the node registers itself.
    DataDirectory dir = DataDirectory.lock(config.dataDir());
    Node[] booted = new Node[1];
    HttpEndpoint http;
    try {
      http = HttpEndpoint.start(endpoints.httpHost(), endpoints.httpPort(),
          () -> booted[0] != null && booted[0].ready(), metrics);
    } catch (RuntimeException e) {
      dir.close();
      throw e;
    }
    try {
      booted[0] = Node.boot(dir, config.withMeters(metrics).withHttpAddress(http.address()));
    } catch (RuntimeException e) {
      http.close();
      throw e;
    }
    return new Server(booted[0], http, metrics);
  }

  public Node node() {
    return node;
  }

  public String httpAddress() {
    return http.address();
  }

  public PrometheusMeterRegistry metrics() {
    return metrics;
  }

  @Override
  public void close() {
    http.close();
    node.close();
  }
}
