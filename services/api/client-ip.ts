/**
 * The client's address as the gateway should believe it. `X-Forwarded-For` is any client's to write, so it is read
 * only through proxies TRUSTED_PROXIES names (addresses, CIDR ranges, and proxy-addr's names `loopback`,
 * `linklocal`, `uniquelocal`), from the right: the nearest address that is not itself trusted is the client.
 * proxy-addr is what Express uses for the same question.
 */
import type { IncomingMessage } from "node:http";
import proxyaddr from "proxy-addr";

export type TrustProxy = (address: string, hop: number) => boolean;

/** The trust function for TRUSTED_PROXIES; throws (naming the entry) on one proxy-addr cannot parse. */
export function trustProxies(entries: string[]): TrustProxy {
	return proxyaddr.compile(entries);
}

const unmapped = (address: string) => (address.startsWith("::ffff:") ? address.slice(7) : address);

export function clientIp(
	remoteAddress: string | undefined,
	forwardedFor: string | string[] | undefined,
	trust: TrustProxy
): string {
	if (!remoteAddress) return "unknown";
	const headers = forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor };
	const req = { socket: { remoteAddress }, connection: { remoteAddress }, headers };
	return unmapped(proxyaddr(req as unknown as IncomingMessage, trust));
}
