/**
 * A node's own health, served next to `/metrics` on METRICS_PORT (the Prometheus reporter's server), so backend
 * nodes without a gateway have probes for compose healthchecks and Kubernetes: `/live` says the process answers,
 * `/ready` that it can do its work (started, not stopping, connected to NATS, its own stores answering).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServiceBroker } from "moleculer";
import { natsDisconnected } from "../patches/nats-connection-state.patch";

/** How long one store health check may take before the node counts as not ready. */
const CHECK_TIMEOUT_MS = 2000;

interface BrokerState {
	started: boolean;
	stopping: boolean;
	transit?: { connected: boolean; tx?: unknown };
	services: Array<{
		name: string;
		fullName: string;
		schema: { actions?: Record<string, unknown> };
	}>;
}

/** What keeps this node from being ready (empty when it is). */
export async function notReadyBecause(broker: ServiceBroker): Promise<string[]> {
	const b = broker as unknown as BrokerState;
	const missing: string[] = [];
	if (!b.started || b.stopping) missing.push("node");
	if (b.transit && (!b.transit.connected || natsDisconnected(b.transit.tx)))
		missing.push("transporter");
	await Promise.all(
		b.services
			.filter(s => s.schema.actions?.health)
			.map(async s => {
				try {
					await broker.call(
						`${s.fullName}.health`,
						{},
						{
							nodeID: broker.nodeID,
							timeout: CHECK_TIMEOUT_MS,
							retries: 0
						}
					);
				} catch {
					missing.push(s.name);
				}
			})
	);
	return missing.sort();
}

function sendJson(res: ServerResponse, status: number, body: object): void {
	res.writeHead(status, {
		"Content-Type": "application/json; charset=utf-8",
		"Cache-Control": "no-store"
	});
	res.end(JSON.stringify(body));
}

/** Answers `/live` and `/ready`; false for any other path (the caller answers those). */
export function handleHealth(
	broker: ServiceBroker,
	req: IncomingMessage,
	res: ServerResponse
): boolean {
	const path = (req.url ?? "").split("?")[0];
	if (path === "/live") {
		sendJson(res, 200, { status: "ok" });
		return true;
	}
	if (path !== "/ready") return false;
	notReadyBecause(broker).then(
		missing =>
			missing.length === 0
				? sendJson(res, 200, { status: "ok" })
				: sendJson(res, 503, { status: "unavailable", missing }),
		() => sendJson(res, 503, { status: "unavailable", missing: ["node"] })
	);
	return true;
}
