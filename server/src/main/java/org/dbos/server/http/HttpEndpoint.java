package org.dbos.server.http;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import java.util.function.BooleanSupplier;
import org.dbos.kernel.SyscallException;

/**
 * The node's local HTTP endpoint: {@code /health} (the process answers), {@code /ready} (the database
 * answers and the node is a live cluster member) and {@code /metrics} (Prometheus text format).
 * The JDK's HTTP server is enough for three read-only routes.
 */
public final class HttpEndpoint implements AutoCloseable {
  private final HttpServer server;

  private HttpEndpoint(HttpServer server) {
    this.server = server;
  }

  /** Binds {@code host:port} (port 0 picks a free one). FAILED_PRECONDITION if the port is taken. */
  public static HttpEndpoint start(String host, int port, BooleanSupplier ready, PrometheusMeterRegistry metrics) {
    HttpServer server;
    try {
      server = HttpServer.create(new InetSocketAddress(host, port), 64);
    } catch (BindException e) {
      throw new SyscallException(SyscallException.Code.FAILED_PRECONDITION,
          "HTTP address " + host + ":" + port + " is in use (choose another with --http)");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    server.createContext("/health", ex -> reply(ex, 200, "ok\n", "text/plain"));
    server.createContext("/ready", ex -> {
      boolean ok = ready.getAsBoolean();
      reply(ex, ok ? 200 : 503, ok ? "ready\n" : "not ready\n", "text/plain");
    });
    server.createContext("/metrics", ex -> reply(ex, 200, metrics.scrape(), "text/plain; version=0.0.4; charset=utf-8"));
    server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
    server.start();
    return new HttpEndpoint(server);
  }

  public String address() {
    return server.getAddress().getHostString() + ":" + server.getAddress().getPort();
  }

  private static void reply(HttpExchange ex, int status, String body, String type) throws IOException {
    try (ex) {
      if (!ex.getRequestMethod().equals("GET") && !ex.getRequestMethod().equals("HEAD")) {
        ex.sendResponseHeaders(405, -1);
        return;
      }
      byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
      ex.getResponseHeaders().set("Content-Type", type);
      ex.sendResponseHeaders(status, bytes.length);
      ex.getResponseBody().write(bytes);
    }
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
