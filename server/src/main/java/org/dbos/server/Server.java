package org.dbos.server;

import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.nio.file.Path;
import org.dbos.kernel.DataDirectory;
import org.dbos.kernel.Node;
import org.dbos.kernel.NodeConfig;
import org.dbos.kernel.files.Retention;
import org.dbos.kernel.scheduler.Worker;
import org.dbos.server.etcd.EtcdServer;
import org.dbos.server.fuse.Mount;
import org.dbos.server.http.HttpEndpoint;

/**
 * What `dbos up` runs: a kernel node plus its front ends. Front ends only adapt protocols to kernel
 * calls; they start after the node and stop before it.
 */
public final class Server implements AutoCloseable {
  /**
   * Where the front ends listen. A null etcd host leaves the etcd API off, a null mount point DBFS
   * unmounted; {@code worker} runs this node's share of the scheduler's tasks.
   */
  public record Endpoints(String httpHost, int httpPort, String etcdHost, int etcdPort, Path mount, boolean worker) {
    public static Endpoints httpOnly(String host, int port) {
      return new Endpoints(host, port, null, 0, null, false);
    }
  }

  private final Node node;
  private final HttpEndpoint http;
  private final PrometheusMeterRegistry metrics;
  private final EtcdServer etcd;
  private final Mount mount;

  private Server(Node node, HttpEndpoint http, PrometheusMeterRegistry metrics, EtcdServer etcd, Mount mount) {
    this.node = node;
    this.http = http;
    this.metrics = metrics;
    this.etcd = etcd;
    this.mount = mount;
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
    Node node = booted[0];
    EtcdServer etcd = null;
    try {
      if (endpoints.worker()) {
        Worker.start(node); // closes with the node's kernel
      }
      Retention.start(node.kernel(), config.fsRetention()); // likewise
      if (endpoints.etcdHost() != null) {
        etcd = EtcdServer.start(node.kernel(), endpoints.etcdHost(), endpoints.etcdPort());
      }
      Mount mount = endpoints.mount() == null ? null : Mount.mount(node.kernel(), endpoints.mount());
      return new Server(node, http, metrics, etcd, mount);
    } catch (RuntimeException e) {
      if (etcd != null) {
        etcd.close();
      }
      http.close();
      node.close();
      throw e;
    }
  }

  /** The etcd API's address, or null when it is off. */
  public String etcdAddress() {
    return etcd == null ? null : etcd.address();
  }

  public Path mountpoint() {
    return mount == null ? null : mount.mountpoint();
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
    node.stopping();
    if (mount != null) {
      mount.close();
    }
    if (etcd != null) {
      etcd.close();
    }
    http.close();
    node.close();
  }
}
