/**
 * The OTLP/HTTP collector that `--observability` exports its spans to: a loopback node:http server that takes
 * `POST /v1/traces` in OTLP's JSON encoding (what @opentelemetry/exporter-trace-otlp-http sends, gzipped or not),
 * checks each span's ids as a collector would, and only counts them. Anything else (another path, protobuf, a body
 * that is not an export request) is refused with a collector's status and counted, so a run can say that none was.
 * The tests' receiver (test/helpers/otlp-receiver.ts) also keeps the spans; bench imports nothing from test/.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

export interface OtlpSink {
	/** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (config/ appends `/v1/traces`). */
	url: string;
	/** Spans accepted so far. */
	spans: number;
	/** Export requests refused, with why (a run reports them: none is expected). */
	refused: string[];
	close(): Promise<void>;
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;

interface ExportRequest {
	resourceSpans?: Array<{
		scopeSpans?: Array<{ spans?: Array<{ traceId?: unknown; spanId?: unknown; name?: unknown }> }>;
	}>;
}

/** The spans of one export request; throws on one that a collector would answer 400. */
function countSpans(body: ExportRequest): number {
	if (!Array.isArray(body.resourceSpans)) throw new Error("resourceSpans is not an array");
	let n = 0;
	for (const rs of body.resourceSpans) {
		for (const ss of rs.scopeSpans ?? []) {
			for (const span of ss.spans ?? []) {
				if (typeof span.traceId !== "string" || !TRACE_ID.test(span.traceId))
					throw new Error(`invalid traceId ${String(span.traceId)}`);
				if (typeof span.spanId !== "string" || !SPAN_ID.test(span.spanId))
					throw new Error(`invalid spanId ${String(span.spanId)}`);
				if (typeof span.name !== "string") throw new Error("a span without a name");
				n++;
			}
		}
	}
	return n;
}

export async function startOtlpSink(): Promise<OtlpSink> {
	const refuse = (res: http.ServerResponse, status: number, why: string) => {
		sink.refused.push(`${status} ${why}`);
		res.writeHead(status, { "Content-Type": "application/json" });
		res.end(JSON.stringify({ code: 3, message: why }));
	};
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			if (req.url !== "/v1/traces") return refuse(res, 404, `path ${req.url}`);
			if (req.method !== "POST") return refuse(res, 405, `method ${req.method}`);
			const type = req.headers["content-type"] ?? "";
			if (!type.startsWith("application/json")) return refuse(res, 415, `content-type ${type}`);
			try {
				const raw = Buffer.concat(chunks);
				const text = (req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString(
					"utf8"
				);
				sink.spans += countSpans(JSON.parse(text) as ExportRequest);
			} catch (err) {
				return refuse(res, 400, err instanceof Error ? err.message : String(err));
			}
			// An ExportTraceServiceResponse without partialSuccess: everything accepted.
			res.writeHead(200, { "Content-Type": "application/json" });
			res.end("{}");
		});
	});
	const sink: OtlpSink = {
		url: "",
		spans: 0,
		refused: [],
		close: () =>
			new Promise<void>(resolve => {
				server.closeAllConnections();
				server.close(() => resolve());
			})
	};
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return sink;
}
