import jwt from "jsonwebtoken";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { loadConfig } from "../../../config";
import {
	hashRefreshToken,
	keyPairFromPem,
	newRefreshToken,
	signAccessToken,
	verifyAccessToken
} from "../../../lib/tokens";
import { makeKeyPair } from "../../helpers/flashmart-cluster";

const pems = makeKeyPair();
const keys = {
	privateKey: createPrivateKey(pems.privateKey),
	publicKey: createPublicKey(pems.publicKey)
};
const auth = loadConfig({}).auth;
const user = { id: "u1", email: "a@b.example", roles: ["customer"] };
const claims = { email: user.email, roles: user.roles };
const opts = { issuer: auth.issuer, audience: auth.audience, subject: user.id, expiresIn: 60 };

describe("tokens.verifyAccessToken", () => {
	it("accepts its own tokens, at most 15 minutes long, with sub, roles, jti, iss and aud", () => {
		const token = signAccessToken(user, keys, auth);
		expect(verifyAccessToken(token, keys, auth)).toEqual(user);
		const decoded = jwt.decode(token, { complete: true }) as jwt.Jwt & { payload: jwt.JwtPayload };
		expect(decoded.header.alg).toBe("RS256");
		expect(decoded.payload.exp! - decoded.payload.iat!).toBeLessThanOrEqual(900);
		expect(decoded.payload).toMatchObject({
			sub: "u1",
			roles: ["customer"],
			iss: "flashmart",
			aud: "flashmart-api"
		});
		expect(decoded.payload.jti).toEqual(expect.any(String));
	});

	it.each([
		["unsigned (alg none)", () => jwt.sign(claims, "", { ...opts, algorithm: "none" })],
		[
			"HS256 with the public key as secret",
			() => jwt.sign(claims, pems.publicKey, { ...opts, algorithm: "HS256" as const })
		],
		[
			"signed by another key",
			() => jwt.sign(claims, makeKeyPair().privateKey, { ...opts, algorithm: "RS256" })
		],
		[
			"expired",
			() =>
				jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 }, pems.privateKey, {
					issuer: auth.issuer,
					audience: auth.audience,
					subject: "u1",
					algorithm: "RS256"
				})
		],
		[
			"from another issuer",
			() => jwt.sign(claims, pems.privateKey, { ...opts, issuer: "evil", algorithm: "RS256" })
		],
		[
			"for another audience",
			() => jwt.sign(claims, pems.privateKey, { ...opts, audience: "other", algorithm: "RS256" })
		],
		[
			"without roles",
			() => jwt.sign({ email: "x" }, pems.privateKey, { ...opts, algorithm: "RS256" })
		],
		[
			"tampered",
			() => {
				const [h, p, s] = signAccessToken(user, keys, auth).split(".");
				const payload = JSON.parse(Buffer.from(p, "base64url").toString());
				payload.roles = ["admin"];
				return [h, Buffer.from(JSON.stringify(payload)).toString("base64url"), s].join(".");
			}
		]
	])("refuses a token %s", (_what, make) => {
		expect(verifyAccessToken(make(), keys, auth)).toBeNull();
	});
});

describe("tokens.refresh", () => {
	it("makes long random tokens and stores only a hash", () => {
		const a = newRefreshToken();
		expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
		expect(a).not.toBe(newRefreshToken());
		expect(hashRefreshToken(a)).toMatch(/^[0-9a-f]{64}$/);
		expect(hashRefreshToken(a)).toBe(hashRefreshToken(a));
	});
});

describe("tokens.verifyAccessToken, remembered tokens", () => {
	afterEach(() => jest.restoreAllMocks());

	it("answers a verified token from memory until it expires, then refuses it", () => {
		const token = jwt.sign(claims, pems.privateKey, { algorithm: "RS256", ...opts });
		expect(verifyAccessToken(token, keys, auth)).toEqual(user);
		const exp = (jwt.decode(token) as jwt.JwtPayload).exp!;
		const now = Date.now();
		// Still valid: the same user (a copy each time, so a caller's change does not leak into the next one).
		const first = verifyAccessToken(token, keys, auth)!;
		first.roles.push("admin");
		expect(verifyAccessToken(token, keys, auth)).toEqual(user);
		// Past its expiry and the clock tolerance: refused, as jwt.verify would.
		jest.spyOn(Date, "now").mockReturnValue(exp * 1000 + 6_000);
		expect(verifyAccessToken(token, keys, auth)).toBeNull();
		jest.spyOn(Date, "now").mockReturnValue(now);
	});

	it("does not answer for another key, issuer or audience from memory", () => {
		const token = jwt.sign(claims, pems.privateKey, { algorithm: "RS256", ...opts });
		expect(verifyAccessToken(token, keys, auth)).toEqual(user);
		const other = makeKeyPair();
		const otherKeys = { privateKey: null, publicKey: createPublicKey(other.publicKey) };
		expect(verifyAccessToken(token, otherKeys, auth)).toBeNull();
		expect(verifyAccessToken(token, keys, { ...auth, audience: "someone-else" })).toBeNull();
		expect(verifyAccessToken(token, keys, { ...auth, issuer: "someone-else" })).toBeNull();
		expect(verifyAccessToken(token, keys, auth)).toEqual(user);
	});

	it("never remembers a refused token", () => {
		const token = jwt.sign(claims, pems.privateKey, { algorithm: "RS256", ...opts });
		const forged = `${token.slice(0, -4)}AAAA`;
		expect(verifyAccessToken(forged, keys, auth)).toBeNull();
		expect(verifyAccessToken(forged, keys, auth)).toBeNull();
	});
});

describe("tokens.keyPairFromPem", () => {
	it("reads both keys, or derives the public key from the private one", () => {
		const both = keyPairFromPem(pems.privateKey, pems.publicKey);
		const derived = keyPairFromPem(pems.privateKey, null);
		const spki = (k: typeof both) => k.publicKey.export({ type: "spki", format: "pem" });
		expect(spki(derived)).toBe(spki(both));
		expect(keyPairFromPem(null, pems.publicKey).privateKey).toBeNull();
		expect(() => keyPairFromPem(null, null)).toThrow("JWT_PUBLIC_KEY");
	});
});
