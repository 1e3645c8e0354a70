/**
 * Logging: every node logs to the console through FlashMartLogger (logger.ts); the log shipping port sends the same
 * records to Elasticsearch (log-shipper.ts) when `ELASTICSEARCH_URL` is set, and nowhere else otherwise.
 */
import type { AppConfig } from "../../config";
import { LogShipper } from "./log-shipper";

export { FlashMartLogger, type RecordSink } from "./logger";
export { type LogRecord, LogShipper } from "./log-shipper";

/** The node's log shipper: Elasticsearch's when configured, else none (console only). */
export function resolveLogShipper(cfg: Pick<AppConfig, "logShipping">): LogShipper | null {
	return cfg.logShipping ? new LogShipper(cfg.logShipping) : null;
}
