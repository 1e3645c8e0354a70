import { hashPassword, verifyPassword } from "../../../lib/password";

describe("password", () => {
	it("verifies the right password and refuses a wrong one", async () => {
		const hash = await hashPassword("correct horse battery");
		expect(hash).toMatch(/^scrypt\$16384\$8\$5\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
		expect(hash).not.toContain("correct horse");
		await expect(verifyPassword("correct horse battery", hash)).resolves.toBe(true);
		await expect(verifyPassword("correct horse batterY", hash)).resolves.toBe(false);
	});

	it("salts every hash", async () => {
		expect(await hashPassword("same-password")).not.toBe(await hashPassword("same-password"));
	});

	it("answers false for no stored hash (unknown user) after doing the same work", async () => {
		await expect(verifyPassword("anything-at-all", null)).resolves.toBe(false);
	});

	it("refuses a malformed stored hash", async () => {
		await expect(verifyPassword("x", "plain-text-password")).resolves.toBe(false);
	});
});
