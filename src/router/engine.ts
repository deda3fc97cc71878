import type { Logger } from '../common/logger.js';
import type { BackendRegistry } from './backends.js';
import type { CertificatePair } from './certificate.js';
import type { MetricsSnapshot } from './metrics.js';
import type { ListenAddress, RouterConfig } from './options.js';
import type { OutlierDetector } from './outlier.js';
import type { RouteApplier } from './route-applier.js';
import type { HttpRouteTable } from './route-table.js';

/** What the router keeps whatever its data plane: routes, backends, health and settings. */
export interface RouterCore {
  config: RouterConfig;
  logger: Logger;
  backends: BackendRegistry;
  table: HttpRouteTable;
  applier: RouteApplier;
  health: OutlierDetector;
}

/** Where an engine listens: the HTTP address, and the HTTPS one with its default certificate. */
export interface EngineListen {
  http: ListenAddress;
  https?: { addr: ListenAddress; defaultCertificate: CertificatePair };
}

/** A data plane serving the router's HTTP(S) listeners (and the TCP routes, when it takes them with `applier.tcpServedBy`). */
export interface Engine {
  readonly httpPort: number;
  readonly httpsPort: number | undefined;
  /** The engine's own metrics listener (HAProxy's exporter), if it serves one. */
  readonly metricsPort?: number;
  /** The metric counts of the engine's worker processes (node engine with `workers`), to add to the router's own. */
  workerMetrics?(): Promise<MetricsSnapshot[]>;
  /** HTTP requests and upgraded connections being served. */
  inFlight(): number;
  /** Stop accepting; idle client connections close, answers in flight carry `Connection: close`. */
  stopAccepting(): Promise<void>;
  /** Resolves once nothing is in flight. */
  whenIdle(): Promise<void>;
  /** Cut whatever is left and free everything. */
  close(): Promise<void>;
}
