import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../../../config";
import { loadKeys, prepareEmbeddedKeys } from "../../../../adapters/keys";
import { signAccessToken, verifyAccessToken } from "../../../../lib/tokens";
import { makeKeyPair } from "../../../helpers/flashmart-cluster";

const pems = makeKeyPair();
const auth = loadConfig({}).auth;
const user = { id: "u1", email: "a@b.example", roles: ["customer"] };

describe("keys.loadKeys", () => {
	it("generates a key pair under DATA_DIR in the embedded mode and reuses it", () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-keys-"));
		const cfg = loadConfig({ DATA_DIR: dir });
		const first = loadKeys(cfg);
		const second = loadKeys(cfg);
		expect(first.privateKey).not.toBeNull();
		expect(second.publicKey.export({ type: "spki", format: "pem" })).toBe(
			first.publicKey.export({ type: "spki", format: "pem" })
		);
		expect(fs.statSync(path.join(dir, "keys", "jwt-private.pem")).mode & 0o077).toBe(0);
		fs.rmSync(dir, { recursive: true, force: true });
	});
});

describe("keys.prepareEmbeddedKeys", () => {
	it("generates the embedded pair in the background once; loadKeys then reads it", async () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-keys-"));
		const cfg = loadConfig({ DATA_DIR: dir });
		await prepareEmbeddedKeys(cfg);
		const file = path.join(dir, "keys", "jwt-private.pem");
		const pem = fs.readFileSync(file, "utf8");
		expect(fs.statSync(file).mode & 0o077).toBe(0);
		await prepareEmbeddedKeys(cfg);
		expect(fs.readFileSync(file, "utf8")).toBe(pem);
		const loaded = loadKeys(cfg);
		expect(loaded.privateKey!.export({ type: "pkcs8", format: "pem" })).toBe(pem);
		const token = signAccessToken(user, loaded, auth);
		expect(verifyAccessToken(token, loaded, auth)).toEqual(user);
		fs.rmSync(dir, { recursive: true, force: true });
	});

	it("does nothing when the keys come from the environment", async () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-keys-"));
		await prepareEmbeddedKeys(
			loadConfig({
				DATA_DIR: dir,
				JWT_PRIVATE_KEY: pems.privateKey,
				JWT_PUBLIC_KEY: pems.publicKey
			})
		);
		expect(fs.existsSync(path.join(dir, "keys"))).toBe(false);
		fs.rmSync(dir, { recursive: true, force: true });
	});
});

describe("keys.loadKeys from the environment", () => {
	it("uses JWT_PRIVATE_KEY / JWT_PUBLIC_KEY and writes nothing", () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-keys-"));
		const keys = loadKeys(
			loadConfig({
				DATA_DIR: dir,
				JWT_PRIVATE_KEY: pems.privateKey,
				JWT_PUBLIC_KEY: pems.publicKey
			})
		);
		expect(keys.publicKey.export({ type: "spki", format: "pem" })).toBe(pems.publicKey);
		expect(fs.existsSync(path.join(dir, "keys"))).toBe(false);
		fs.rmSync(dir, { recursive: true, force: true });
	});
});
