/**
 * Access and refresh tokens. Access tokens are JWTs signed RS256 (at most 15 minutes) that any gateway verifies
 * locally with the public key, algorithm pinned and `iss`/`aud`/`exp` checked. Refresh tokens are opaque random
 * strings; only their SHA-256 is ever stored.
 */
import {
	createHash,
	createPrivateKey,
	createPublicKey,
	generateKeyPairSync,
	type KeyObject,
	randomBytes,
	randomUUID
} from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import jwt from "jsonwebtoken";
import type { AppConfig } from "../config";
import type { AuthUser } from "../types/meta";

export interface KeyPair {
	privateKey: KeyObject | null;
	publicKey: KeyObject;
}

/**
 * The signing keys. Cluster mode: from JWT_PRIVATE_KEY / JWT_PUBLIC_KEY (config refuses to start without them).
 * Embedded mode: a pair generated under DATA_DIR/keys on first start and reused afterwards.
 */
export function loadKeys(cfg: AppConfig): KeyPair {
	let privatePem = cfg.auth.privateKeyPem;
	let publicPem = cfg.auth.publicKeyPem;
	if (!privatePem && !publicPem && cfg.mode === "embedded") {
		const dir = path.join(cfg.dataDir, "keys");
		const privFile = path.join(dir, "jwt-private.pem");
		const pubFile = path.join(dir, "jwt-public.pem");
		if (!fs.existsSync(privFile)) {
			fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
			const pair = generateKeyPairSync("rsa", {
				modulusLength: 2048,
				publicKeyEncoding: { type: "spki", format: "pem" },
				privateKeyEncoding: { type: "pkcs8", format: "pem" }
			});
			// Write to temporary names and rename, so two processes starting at once never read half a key.
			fs.writeFileSync(`${privFile}.${process.pid}`, pair.privateKey, { mode: 0o600 });
			fs.writeFileSync(`${pubFile}.${process.pid}`, pair.publicKey, { mode: 0o644 });
			fs.renameSync(`${pubFile}.${process.pid}`, pubFile);
			fs.renameSync(`${privFile}.${process.pid}`, privFile);
		}
		privatePem = fs.readFileSync(privFile, "utf8");
		publicPem = fs.readFileSync(pubFile, "utf8");
	}
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

export function signAccessToken(user: AuthUser, keys: KeyPair, cfg: AppConfig["auth"]): string {
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

/** The user of a valid access token, or null for anything else (forged, expired, wrong issuer/audience/algorithm). */
export function verifyAccessToken(
	token: string,
	keys: KeyPair,
	cfg: AppConfig["auth"]
): AuthUser | null {
	try {
		const claims = jwt.verify(token, keys.publicKey, {
			algorithms: ["RS256"],
			issuer: cfg.issuer,
			audience: cfg.audience,
			clockTolerance: 5
		}) as Partial<AccessClaims>;
		if (typeof claims.sub !== "string" || !Array.isArray(claims.roles)) return null;
		return { id: claims.sub, email: String(claims.email ?? ""), roles: claims.roles.map(String) };
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
