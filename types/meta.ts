/** What FlashMart keeps in `ctx.meta`. */
export interface AuthUser {
	id: string;
	email: string;
	roles: string[];
}

export interface AppMeta {
	/** The authenticated caller, set by the gateway from a verified access token; never from client input. */
	user?: AuthUser | null;
	/** The client's address as the gateway saw it (after trusted-proxy handling). */
	clientIp?: string;
	/** The request's `Idempotency-Key` header, passed on by the gateway (validated by the idempotency mixin). */
	idempotencyKey?: string;
	/** A device token the gateway read from the client (e.g. a cookie); the login body may carry one as well. */
	deviceToken?: string;
	/** HTTP response controls understood by moleculer-web. */
	$statusCode?: number;
	$responseHeaders?: Record<string, string>;
	$responseType?: string;
	$location?: string;
}
