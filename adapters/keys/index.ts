/**
 * Where the JWT signing keys come from, picked by the configuration: the environment (JWT_PRIVATE_KEY /
 * JWT_PUBLIC_KEY, required in the cluster mode), or in the embedded mode a pair generated under DATA_DIR/keys on
 * first start and reused afterwards. Signing and verifying with them is lib/tokens.ts, which does no I/O.
 */
import { generateKeyPair, generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { AppConfig } from "../../config";
import { type KeyPair, keyPairFromPem } from "../../lib/tokens";

/** Where the embedded mode keeps its generated pair. */
function embeddedKeyFiles(cfg: AppConfig) {
	const dir = path.join(cfg.dataDir, "keys");
	return {
		dir,
		privFile: path.join(dir, "jwt-private.pem"),
		pubFile: path.join(dir, "jwt-public.pem")
	};
}

const needsEmbeddedKeys = (cfg: AppConfig) =>
	!cfg.auth.privateKeyPem && !cfg.auth.publicKeyPem && cfg.mode === "embedded";

/** Writes a generated pair under temporary names and renames, so two processes starting at once never read half a key. */
function writeKeyPair(cfg: AppConfig, pair: { privateKey: string; publicKey: string }): void {
	const { dir, privFile, pubFile } = embeddedKeyFiles(cfg);
	fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
	fs.writeFileSync(`${privFile}.${process.pid}`, pair.privateKey, { mode: 0o600 });
	fs.writeFileSync(`${pubFile}.${process.pid}`, pair.publicKey, { mode: 0o644 });
	fs.renameSync(`${pubFile}.${process.pid}`, pubFile);
	fs.renameSync(`${privFile}.${process.pid}`, privFile);
}

const RSA_OPTIONS = {
	modulusLength: 2048,
	publicKeyEncoding: { type: "spki", format: "pem" },
	privateKeyEncoding: { type: "pkcs8", format: "pem" }
} as const;

/**
 * Embedded mode, first start: generates the key pair in libuv's thread pool, so that server.ts can compile the
 * service modules meanwhile instead of waiting for a synchronous generation in the gateway's `created` (a cold
 * start's largest single cost). A no-op when the keys exist or come from the environment; `loadKeys` still
 * generates them itself if this was not called.
 */
export async function prepareEmbeddedKeys(cfg: AppConfig): Promise<void> {
	if (!needsEmbeddedKeys(cfg) || fs.existsSync(embeddedKeyFiles(cfg).privFile)) return;
	const pair = await promisify(generateKeyPair)("rsa", RSA_OPTIONS);
	if (!fs.existsSync(embeddedKeyFiles(cfg).privFile)) writeKeyPair(cfg, pair);
}

/** The signing keys for this configuration: from the environment, or the embedded pair under DATA_DIR/keys. */
export function loadKeys(cfg: AppConfig): KeyPair {
	let privatePem = cfg.auth.privateKeyPem;
	let publicPem = cfg.auth.publicKeyPem;
	if (needsEmbeddedKeys(cfg)) {
		const { privFile, pubFile } = embeddedKeyFiles(cfg);
		if (!fs.existsSync(privFile)) writeKeyPair(cfg, generateKeyPairSync("rsa", RSA_OPTIONS));
		privatePem = fs.readFileSync(privFile, "utf8");
		publicPem = fs.readFileSync(pubFile, "utf8");
	}
	return keyPairFromPem(privatePem, publicPem);
}
