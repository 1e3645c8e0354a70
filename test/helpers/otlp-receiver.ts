/**
 * A loopback OTLP/HTTP trace receiver: what a collector (Jaeger v2, the OpenTelemetry Collector) does with an export,
 * as far as the tests need it, and as strict: only `POST /v1/traces` with `Content-Type: application/json` (the
 * JSON encoding of OTLP, which @opentelemetry/exporter-trace-otlp-http sends), a body that parses as an
 * ExportTraceServiceRequest whose ids are hex of the right length and whose times are nanosecond strings; anything
 * else is answered 400/404/415 as a collector would, and counted.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** An OTLP AnyValue, as JSON. */
type AnyValue = {
	stringValue?: string;
	intValue?: string | number;
	doubleValue?: number;
	boolValue?: boolean;
};
type KeyValue = { key: string; value: AnyValue };

interface OtlpSpan {
	traceId: string;
	spanId: string;
	parentSpanId?: string;
	name: string;
	kind: number;
	startTimeUnixNano: string;
	endTimeUnixNano: string;
	attributes?: KeyValue[];
	status?: { code?: number; message?: string };
}

/** One received span, its attributes flattened, with its resource's. */
export interface ReceivedSpan {
	traceId: string;
	spanId: string;
	/** Empty for a root span. */
	parentSpanId: string;
	name: string;
	kind: "internal" | "server" | "client" | "producer" | "consumer";
	attributes: Record<string, string | number | boolean>;
	resource: Record<string, string | number | boolean>;
	/** OTLP status code: 0 unset, 1 ok, 2 error. */
	statusCode: number;
	startNs: bigint;
	endNs: bigint;
}

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"] as const;
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const NANOS = /^[0-9]+$/;

function valueOf(v: AnyValue): string | number | boolean {
	if (v.stringValue !== undefined) return v.stringValue;
	if (v.intValue !== undefined) return Number(v.intValue);
	if (v.doubleValue !== undefined) return v.doubleValue;
	if (v.boolValue !== undefined) return v.boolValue;
	throw new Error(`unsupported attribute value ${JSON.stringify(v)}`);
}

const flatten = (kvs: KeyValue[] | undefined) =>
	Object.fromEntries((kvs ?? []).map(kv => [kv.key, valueOf(kv.value)]));

/** Decodes one export request; throws on anything an OTLP receiver would refuse. */
function decode(body: unknown): ReceivedSpan[] {
	const out: ReceivedSpan[] = [];
	const req = body as {
		resourceSpans?: Array<{
			resource?: { attributes?: KeyValue[] };
			scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
		}>;
	};
	if (!Array.isArray(req.resourceSpans)) throw new Error("resourceSpans missing");
	for (const rs of req.resourceSpans) {
		const resource = flatten(rs.resource?.attributes);
		for (const ss of rs.scopeSpans ?? []) {
			for (const s of ss.spans ?? []) {
				if (!HEX32.test(s.traceId)) throw new Error(`bad traceId ${s.traceId}`);
				if (!HEX16.test(s.spanId)) throw new Error(`bad spanId ${s.spanId}`);
				if (s.parentSpanId && !HEX16.test(s.parentSpanId))
					throw new Error(`bad parentSpanId ${s.parentSpanId}`);
				if (!NANOS.test(String(s.startTimeUnixNano)) || !NANOS.test(String(s.endTimeUnixNano)))
					throw new Error(`bad times on ${s.name}`);
				if (typeof s.name !== "string" || !KINDS[s.kind]) throw new Error("bad name or kind");
				out.push({
					traceId: s.traceId,
					spanId: s.spanId,
					parentSpanId: s.parentSpanId ?? "",
					name: s.name,
					kind: KINDS[s.kind] as ReceivedSpan["kind"],
					attributes: flatten(s.attributes),
					resource,
					statusCode: s.status?.code ?? 0,
					startNs: BigInt(s.startTimeUnixNano),
					endNs: BigInt(s.endTimeUnixNano)
				});
			}
		}
	}
	return out;
}

export interface OtlpReceiver {
	/** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://127.0.0.1:4318 */
	url: string;
	spans: ReceivedSpan[];
	/** Requests refused (a test asserts there were none). */
	refused: string[];
	trace(traceId: string): ReceivedSpan[];
	close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
	const spans: ReceivedSpan[] = [];
	const refused: string[] = [];
	const refuse = (res: http.ServerResponse, status: number, why: string) => {
		refused.push(`${status} ${why}`);
		res.writeHead(status, { "Content-Type": "application/json" });
		res.end(JSON.stringify({ code: 3, message: why }));
	};
	const server = http.createServer((req, res) => {
		if (req.url !== "/v1/traces") return refuse(res, 404, `path ${req.url}`);
		if (req.method !== "POST") return refuse(res, 405, `method ${req.method}`);
		if (!(req.headers["content-type"] ?? "").startsWith("application/json"))
			return refuse(res, 415, `content-type ${req.headers["content-type"]}`);
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			try {
				spans.push(...decode(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
			} catch (err) {
				return refuse(res, 400, (err as Error).message);
			}
			res.writeHead(200, { "Content-Type": "application/json" });
			res.end("{}");
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}`,
		spans,
		refused,
		trace: traceId => spans.filter(s => s.traceId === traceId),
		close: () =>
			new Promise<void>(resolve => {
				server.closeAllConnections();
				server.close(() => resolve());
			})
	};
}
