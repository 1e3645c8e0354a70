/**
 * The Elasticsearch that `--observability` ships its logs to: a loopback node:http server that answers what the log
 * shipper sends (`PUT _index_template/<name>`, `POST _bulk`), with the `x-elastic-product` header the official
 * client insists on, and only counts the documents. The tests' stand-in (test/helpers/es-stand-in.ts) also keeps
 * them and can be made slow; bench keeps its own so that it imports nothing from test/.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface LogSink {
	url: string;
	/** Documents indexed so far. */
	received: number;
	close(): Promise<void>;
}

const HEADERS = {
	"Content-Type": "application/json",
	"x-elastic-product": "Elasticsearch"
};

/** The answer items of a `_bulk` body: `index`/`create` action lines, each followed by its document. */
function bulkItems(body: string, defaultIndex: string | undefined): unknown[] {
	const lines = body.split("\n").filter(l => l.trim() !== "");
	const items: unknown[] = [];
	for (let i = 0; i < lines.length; i += 2) {
		const action = JSON.parse(lines[i]) as Record<string, { _index?: string }>;
		const op = Object.keys(action)[0];
		const index = action[op]._index ?? defaultIndex ?? "";
		// A malformed document is a 400, as Elasticsearch would answer it.
		JSON.parse(lines[i + 1] ?? "{}");
		items.push({
			[op]: { _index: index, _id: String(items.length + 1), status: 201, result: "created" }
		});
	}
	return items;
}

export async function startLogSink(): Promise<LogSink> {
	const answer = (res: http.ServerResponse, status: number, body: unknown) => {
		if (res.destroyed) return;
		res.writeHead(status, HEADERS);
		res.end(JSON.stringify(body));
	};
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const body = Buffer.concat(chunks).toString("utf8");
			const url = new URL(req.url ?? "/", "http://sink");
			const parts = url.pathname.split("/").filter(Boolean);
			try {
				if (req.method === "PUT" && parts[0] === "_index_template" && parts[1]) {
					JSON.parse(body);
					return answer(res, 200, { acknowledged: true });
				}
				const bulkAt = parts.indexOf("_bulk");
				if ((req.method === "POST" || req.method === "PUT") && bulkAt >= 0) {
					const items = bulkItems(body, bulkAt === 1 ? parts[0] : undefined);
					sink.received += items.length;
					return answer(res, 200, { took: 1, errors: false, items });
				}
				if (req.method === "GET" && parts.length === 0) {
					return answer(res, 200, {
						name: "stand-in",
						cluster_name: "stand-in",
						version: { number: "8.15.0" }
					});
				}
				answer(res, 404, { error: { type: "not_found", reason: url.pathname }, status: 404 });
			} catch (err) {
				answer(res, 400, { error: { type: "parse_exception", reason: String(err) }, status: 400 });
			}
		});
	});
	const sink: LogSink = {
		url: "",
		received: 0,
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
