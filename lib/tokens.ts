/**
 * Access and refresh tokens. Access tokens are JWTs signed RS256 (at most 15 minutes) that any gateway verifies
 * locally with the public key, algorithm pinned and `iss`/`aud`/`exp` checked. Refresh tokens are opaque random
 * strings; only their SHA-256 is ever stored. Where the keys come from is adapters/keys/.
 */
import {
	createHash,
	createPrivateKey,
	createPublicKey,
	type KeyObject,
	randomBytes,
	randomUUID
} from "node:crypto";
import jwt from "jsonwebtoken";
import type { AuthUser } from "../types/meta";

/** What signing and checking tokens needs of the configuration (its `auth` section fits). */
export interface TokenSettings {
	issuer: string;
	audience: string;
	accessTokenTtl: number;
	deviceTokenTtl: number;
}

export interface KeyPair {
	privateKey: KeyObject | null;
	publicKey: KeyObject;
}

/** The key pair from PEM text: the public key derived from the private one when only that is given. */
export function keyPairFromPem(privatePem: string | null, publicPem: string | null): KeyPair {
	const privateKey = privatePem ? createPrivateKey(privatePem) : null;
	const publicKey = publicPem
		? createPublicKey(publicPem)
		: privateKey
			? createPublicKey(privateKey)
			: null;
	if (!publicKey) throw new Error("No JWT public key: set JWT_PUBLIC_KEY");
	return { privateKey, publicKey };
}

export interface AccessClaims {
	sub: string;
	email: string;
	roles: string[];
	jti: string;
}

export function signAccessToken(user: AuthUser, keys: KeyPair, cfg: TokenSettings): string {
	if (!keys.privateKey) throw new Error("This node has no JWT private key");
	return jwt.sign({ email: user.email, roles: user.roles }, keys.privateKey, {
		algorithm: "RS256",
		expiresIn: cfg.accessTokenTtl,
		issuer: cfg.issuer,
		audience: cfg.audience,
		subject: user.id,
		jwtid: randomUUID()
	});
}

/** Per public key (a KeyObject, compared by identity): tokens verified lately, with their user and expiry (s). */
const verifiedByKey = new WeakMap<
	KeyObject,
	Map<string, { user: AuthUser; exp: number; checks: string }>
>();
/** Enough for every active user of a gateway; past it, the oldest entries go (a Map keeps insertion order). */
const VERIFIED_MAX = 10_000;
const CLOCK_TOLERANCE_S = 5;

/**
 * The user of a valid access token, or null for anything else (forged, expired, wrong issuer/audience/algorithm).
 * An RS256 verification is the gateway's biggest per-request cost for authenticated calls (bench profile): a token
 * that verified once is remembered until it expires, under the same key and checks. A token is immutable and
 * signed, so the answer for it can only change with time, which is checked on every use.
 */
export function verifyAccessToken(
	token: string,
	keys: KeyPair,
	cfg: TokenSettings
): AuthUser | null {
	const now = Date.now() / 1000;
	let verified = verifiedByKey.get(keys.publicKey);
	if (!verified) {
		verified = new Map();
		verifiedByKey.set(keys.publicKey, verified);
	}
	const checks = `${cfg.issuer}\0${cfg.audience}`;
	const hit = verified.get(token);
	if (hit && hit.checks === checks) {
		// A copy: callers put it in ctx.meta, which middlewares may change.
		if (now <= hit.exp + CLOCK_TOLERANCE_S) return { ...hit.user, roles: [...hit.user.roles] };
		verified.delete(token);
		return null;
	}
	try {
		const claims = jwt.verify(token, keys.publicKey, {
			algorithms: ["RS256"],
			issuer: cfg.issuer,
			audience: cfg.audience,
			clockTolerance: CLOCK_TOLERANCE_S
		}) as Partial<AccessClaims> & { exp?: number; nbf?: number };
		if (typeof claims.sub !== "string" || !Array.isArray(claims.roles)) return null;
		const user = {
			id: claims.sub,
			email: String(claims.email ?? ""),
			roles: claims.roles.map(String)
		};
		// Only tokens with an expiry and no future not-before are remembered; the others verify every time.
		if (typeof claims.exp === "number" && claims.nbf === undefined) {
			if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
			verified.set(token, { user, exp: claims.exp, checks });
		}
		return user;
	} catch {
		return null;
	}
}

/** A new opaque refresh token (256 random bits). */
export function newRefreshToken(): string {
	return randomBytes(32).toString("base64url");
}

/** What is stored instead of the refresh token itself. */
export function hashRefreshToken(token: string): string {
	return createHash("sha256").update(token).digest("hex");
}

/** The audience of device tokens: never the access tokens' one, so a gateway refuses a device token as a bearer. */
const deviceAudience = (cfg: TokenSettings) => `${cfg.audience}:device`;

/**
 * A device token (OWASP's "device cookie"): proof that this client signed in to this account before. It exempts the
 * client from the lockouts that failures of other clients cause; it grants nothing else.
 */
export function signDeviceToken(userId: string, keys: KeyPair, cfg: TokenSettings): string {
	if (!keys.privateKey) throw new Error("This node has no JWT private key");
	return jwt.sign({ typ: "device" }, keys.privateKey, {
		algorithm: "RS256",
		expiresIn: cfg.deviceTokenTtl,
		issuer: cfg.issuer,
		audience: deviceAudience(cfg),
		subject: userId,
		jwtid: randomUUID()
	});
}

/** The user and id of a valid device token, or null. */
export function verifyDeviceToken(
	token: string,
	keys: KeyPair,
	cfg: TokenSettings
): { userId: string; id: string } | null {
	try {
		const claims = jwt.verify(token, keys.publicKey, {
			algorithms: ["RS256"],
			issuer: cfg.issuer,
			audience: deviceAudience(cfg),
			clockTolerance: CLOCK_TOLERANCE_S
		}) as { sub?: unknown; jti?: unknown; typ?: unknown };
		if (claims.typ !== "device" || typeof claims.sub !== "string" || typeof claims.jti !== "string")
			return null;
		return { userId: claims.sub, id: claims.jti };
	} catch {
		return null;
	}
}
