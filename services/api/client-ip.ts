/**
 * The client's address as the gateway should believe it. `X-Forwarded-For` is any client's to write, so it is read
 * only when the connection comes from a configured trusted proxy, and then from the right: the nearest address that
 * is not itself a trusted proxy is the client.
 */

function normalize(address: string): string {
	const a = address.trim();
	return a.startsWith("::ffff:") ? a.slice(7) : a;
}

export function clientIp(
	remoteAddress: string | undefined,
	forwardedFor: string | string[] | undefined,
	trustedProxies: string[]
): string {
	const remote = normalize(remoteAddress ?? "unknown");
	if (!trustedProxies.includes(remote) || !forwardedFor) return remote;
	const chain = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
		.split(",")
		.map(normalize)
		.filter(Boolean);
	for (let i = chain.length - 1; i >= 0; i--) {
		if (!trustedProxies.includes(chain[i])) return chain[i];
	}
	return chain[0] ?? remote;
}
