/**
 * A node that restarts under its old name takes traffic as soon as it is back.
 *
 * Moleculer's circuit breaker opens by marking the node's action endpoints unavailable (`endpoint.state = false`) and
 * only tries again after BREAKER_HALF_OPEN_TIME. A container restarted faster than the heartbeat timeout comes back
 * with the same node id, so the registry keeps the same endpoint objects, still marked open: `/ready` said 200 while
 * the gateway answered 503 for another 10-15 s. When a node connects again, or announces a new instance (a restart),
 * this marks its endpoints available; the breaker opens again if the new instance fails too.
 */
import type { Middleware, ServiceBroker } from "moleculer";
import { type PatchTarget, outOfRange, warnSkipped } from "./target";

/** `registry.actions.actions` and `endpoint.state` are not public API. */
export const TARGET: PatchTarget = { package: "moleculer", range: "~0.15.2" };

interface EndpointLike {
	state: boolean;
	node: { id: string };
}
interface RegistryLike {
	actions?: { actions?: Map<string, { endpoints?: EndpointLike[] }> };
}
interface NodeEvent {
	node: { id: string; instanceID: string | null };
}

/** The endpoint lists of the broker's registry, or why they are not what this was written against. */
export function probe(broker: ServiceBroker): Map<string, { endpoints?: EndpointLike[] }> | string {
	const actions = (broker as unknown as { registry?: RegistryLike }).registry?.actions?.actions;
	if (!(actions instanceof Map)) return "registry.actions.actions is not a Map";
	return actions;
}

/** Marks every action endpoint of `nodeID` available; answers how many were marked unavailable. */
export function reopenEndpoints(broker: ServiceBroker, nodeID: string): number {
	const lists = probe(broker);
	if (typeof lists === "string") return 0;
	let reopened = 0;
	for (const list of lists.values()) {
		for (const ep of list.endpoints ?? []) {
			if (ep.node?.id === nodeID && ep.state === false) {
				ep.state = true;
				reopened++;
			}
		}
	}
	return reopened;
}

export function BreakerResetMiddleware(): Middleware {
	return {
		name: "BreakerReset",
		// From the start, so every node this broker ever sees has its instance on record.
		created(broker: ServiceBroker) {
			const lists = probe(broker);
			const reason = outOfRange(TARGET) ?? (typeof lists === "string" ? lists : null);
			if (reason !== null) {
				warnSkipped("breaker-reset", reason);
				return;
			}
			const instances = new Map<string, string | null>();
			const back = (nodeID: string) => {
				const n = reopenEndpoints(broker, nodeID);
				if (n > 0) {
					broker.logger.info(
						`Node '${nodeID}' is back: ${n} endpoint(s) the circuit breaker took out take traffic again`
					);
				}
			};
			broker.localBus.on("$node.connected", ({ node }: NodeEvent) => {
				instances.set(node.id, node.instanceID);
				back(node.id);
			});
			broker.localBus.on("$node.updated", ({ node }: NodeEvent) => {
				if (instances.get(node.id) === node.instanceID) return;
				instances.set(node.id, node.instanceID);
				back(node.id);
			});
		}
	} as unknown as Middleware;
}
