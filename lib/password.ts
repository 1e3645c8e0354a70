/**
 * Password hashing with scrypt from node:crypto, a memory-hard KDF, at one of OWASP's recommended parameter sets
 * (N=2^14, r=8, p=5: 16 MiB per hash). Hashes are self-describing (`scrypt$N$r$p$salt$hash`), so the parameters
 * can be raised later and old hashes still verify. Comparison is constant-time.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

const N = 2 ** 14;
const R = 8;
const P = 5;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const MAX_MEMORY = 64 * 1024 * 1024;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		scrypt(
			password.normalize("NFKC"),
			salt,
			KEY_LENGTH,
			{ N: n, r, p, maxmem: MAX_MEMORY },
			(err, key) => (err ? reject(err) : resolve(key))
		);
	});
}

export async function hashPassword(password: string): Promise<string> {
	const salt = randomBytes(SALT_LENGTH);
	const key = await derive(password, salt, N, R, P);
	return `scrypt$${N}$${R}$${P}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/** A hash of nothing in particular: verifying against it costs what a real verification costs. */
let dummyHash: Promise<string> | null = null;

/**
 * Whether `password` matches `stored`. With `stored` null (no such user) it still spends the time of a real
 * verification, so a login for an unknown email takes as long as one with a wrong password.
 */
export async function verifyPassword(
	password: string,
	stored: string | null | undefined
): Promise<boolean> {
	if (!stored) {
		dummyHash ??= hashPassword(randomBytes(16).toString("hex"));
		await verifyPassword(password, await dummyHash);
		return false;
	}
	const [scheme, n, r, p, salt, key] = stored.split("$");
	if (scheme !== "scrypt" || !key) return false;
	const expected = Buffer.from(key, "base64");
	const actual = await derive(
		password,
		Buffer.from(salt, "base64"),
		Number(n),
		Number(r),
		Number(p)
	);
	return actual.length === expected.length && timingSafeEqual(actual, expected);
}
