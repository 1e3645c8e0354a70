/**
 * Spans for what a service does outside the broker: its store operations, the payment provider's charges and
 * refunds, the object store. The ports are recognised by their shape on the started service (the moleculer-db adapter
 * and `stores`, anything with charge/refund/retrieve, anything with put/get/remove/ensureBucket) and their methods
 * wrapped on the instance, so every holder of the same object is traced and the ports themselves know nothing of it.
 */
import type { Attributes } from "@opentelemetry/api";
import type { SpanKindName } from "./index";
import type { Tracing } from "./tracing";

type Methods = Record<string, unknown>;

const STORE_METHODS = [
	"find",
	"findOne",
	"findById",
	"count",
	"insert",
	"updateMany",
	"updateById",
	"removeMany",
	"removeById",
	"clear"
];
const PROVIDER_METHODS = ["charge", "refund", "retrieve"];
const OBJECT_STORE_METHODS = ["put", "get", "remove"];

const INSTRUMENTED = Symbol("flashmart.traced");

const hasMethods = (value: unknown, names: string[]): value is Methods =>
	!!value &&
	typeof value === "object" &&
	names.every(name => typeof (value as Methods)[name] === "function");

/** Wraps each of `methods` on `target` in a span named and described by `describe`; once per object. */
function instrument(
	tracing: Tracing,
	target: Methods,
	methods: string[],
	kind: SpanKindName,
	describe: (method: string) => { name: string; attributes: Attributes }
): void {
	if ((target as Record<symbol, unknown>)[INSTRUMENTED]) return;
	Object.defineProperty(target, INSTRUMENTED, { value: true });
	for (const method of methods) {
		const original = target[method];
		if (typeof original !== "function") continue;
		const { name, attributes } = describe(method);
		target[method] = function traced(this: unknown, ...args: unknown[]) {
			return tracing.inSpan(name, kind, attributes, () =>
				(original as (...a: unknown[]) => unknown).apply(this, args)
			);
		};
	}
}

export interface ServiceLike {
	name: string;
	schema?: { collection?: string };
	adapter?: unknown;
	stores?: Record<string, unknown>;
	[key: string]: unknown;
}

/** The collection a moleculer-db adapter serves (both adapters keep the schema they were initialised with). */
function collectionOf(adapter: Methods, fallback: string): string {
	const schema = (adapter.service as { schema?: { collection?: string } } | undefined)?.schema;
	return schema?.collection ?? fallback;
}

/** Instruments the ports of a started service (the tracing middleware's `serviceStarted`). */
export function instrumentPorts(tracing: Tracing, service: ServiceLike): void {
	const stores = [service.adapter, ...Object.values(service.stores ?? {})];
	for (const store of stores) {
		if (!hasMethods(store, ["find", "findById", "updateMany"])) continue;
		const collection = collectionOf(store, service.schema?.collection ?? service.name);
		const system = (store as { collection?: unknown }).collection ? "mongodb" : "nedb";
		instrument(tracing, store, STORE_METHODS, "client", operation => ({
			name: `${operation} ${collection}`,
			attributes: {
				"db.system.name": system,
				"db.collection.name": collection,
				"db.operation.name": operation
			}
		}));
	}
	for (const value of Object.values(service)) {
		if (hasMethods(value, PROVIDER_METHODS)) {
			instrument(tracing, value, PROVIDER_METHODS, "client", operation => ({
				name: `payment.${operation}`,
				attributes: {
					"payment.provider": String(value.constructor?.name ?? "provider"),
					"payment.operation": operation
				}
			}));
		} else if (hasMethods(value, [...OBJECT_STORE_METHODS, "ensureBucket"])) {
			instrument(tracing, value, OBJECT_STORE_METHODS, "client", operation => ({
				name: `object_store.${operation}`,
				attributes: { "object_store.operation": operation }
			}));
		}
	}
}
