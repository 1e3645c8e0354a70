/**
 * The rate-limit counter port (rate-limiter-flexible). The embedded mode counts in the process. A cluster counts in
 * Redis when CACHER is a redis:// URL, so that every node of a service sees the same counters; config/ refuses a
 * cluster node with MONGO_URI (where replicas of `users` are possible) without one. Without MONGO_URI a cluster keeps
 * one node per stateful service (each node has its own NeDB files), so counting in that node's process is exact.
 */
import Redis from "ioredis";
import {
	type RateLimiterAbstract,
	RateLimiterMemory,
	RateLimiterRedis,
	RateLimiterRes
} from "rate-limiter-flexible";
import type { AppConfig } from "../../config";

export { RateLimiterRes };

export interface LimiterSpec {
	/** Distinguishes this limiter's keys from every other's. */
	name: string;
	/** Points a key may spend in a window. */
	points: number;
	/** Window in seconds, from a key's first point. */
	duration: number;
}

export interface RateLimitStore {
	kind: "memory" | "redis";
	limiter(spec: LimiterSpec): RateLimiterAbstract;
	close(): Promise<void>;
}

/** The counters for this node's configuration. */
export function resolveRateLimitStore(
	cfg: Pick<AppConfig, "cacher" | "namespace">
): RateLimitStore {
	const prefix = (name: string) => `${cfg.namespace || "flashmart"}-rl-${name}`;
	if (cfg.cacher.type !== "redis") {
		return {
			kind: "memory",
			limiter: spec =>
				new RateLimiterMemory({
					keyPrefix: prefix(spec.name),
					points: spec.points,
					duration: spec.duration
				}),
			close: async () => undefined
		};
	}
	// No offline queue: while Redis is unreachable a call fails at once and the insurance limiter (this process's
	// memory) answers, so a Redis outage weakens throttling to per node instead of failing every login.
	const client = new Redis(cfg.cacher.url, {
		enableOfflineQueue: false,
		maxRetriesPerRequest: 1,
		lazyConnect: false
	});
	client.on("error", () => undefined);
	return {
		kind: "redis",
		limiter: spec =>
			new RateLimiterRedis({
				storeClient: client,
				keyPrefix: prefix(spec.name),
				points: spec.points,
				duration: spec.duration,
				insuranceLimiter: new RateLimiterMemory({
					keyPrefix: prefix(spec.name),
					points: spec.points,
					duration: spec.duration
				})
			}),
		close: async () => {
			client.disconnect();
		}
	};
}
