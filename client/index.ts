/**
 * FlashMart's typed HTTP client: openapi-fetch over the types that openapi-typescript generates from the gateway's
 * OpenAPI document (client/schema.d.ts, written by `npm run client`; CI's `npm run client:check` fails when it
 * differs from a fresh generation). Paths, parameters, bodies, answers and error answers are all typed.
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, operations, paths } from "./schema";

/** The document's named schemas: `Schema<"Product">`, `Schema<"Order">`, `Schema<"Error">`, ... */
export type Schema<Name extends keyof components["schemas"]> = components["schemas"][Name];

export type FlashMartClient = Client<paths>;

export interface ClientOptions {
	/** Where the gateway listens, e.g. `http://localhost:5921`. */
	baseUrl: string;
	/**
	 * The access token to send as `Authorization: Bearer …`, asked for on every request so that a refreshed
	 * token is used at once; none (or undefined) sends no header.
	 */
	token?: () => string | undefined;
	/** Another fetch (tests, proxies); the global one by default. */
	fetch?: typeof globalThis.fetch;
}

export function createFlashMartClient(opts: ClientOptions): FlashMartClient {
	const client = createClient<paths>({ baseUrl: opts.baseUrl, fetch: opts.fetch });
	const token = opts.token;
	if (token) {
		client.use({
			onRequest({ request }) {
				const value = token();
				if (value) request.headers.set("Authorization", `Bearer ${value}`);
				return request;
			}
		});
	}
	return client;
}
