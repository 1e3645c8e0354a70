/**
 * `npm run keys`: a JWT signing pair for the cluster mode, printed as the two lines of a `.env` file
 * (`JWT_PRIVATE_KEY` for users nodes, `JWT_PUBLIC_KEY` for gateways), each PEM on one line with `\n` between lines,
 * the form config/ reads. `npm run keys >> .env` appends them; `--export` prints `export VAR='...'` lines for a shell.
 */
import { generateKeyPairSync } from "node:crypto";

const { privateKey, publicKey } = generateKeyPairSync("rsa", {
	modulusLength: 2048,
	publicKeyEncoding: { type: "spki", format: "pem" },
	privateKeyEncoding: { type: "pkcs8", format: "pem" }
});
const oneLine = (pem: string) => pem.trim().replace(/\n/g, "\\n");
const asShell = process.argv.includes("--export");
for (const [name, pem] of [
	["JWT_PRIVATE_KEY", privateKey],
	["JWT_PUBLIC_KEY", publicKey]
] as const) {
	console.log(asShell ? `export ${name}='${oneLine(pem)}'` : `${name}="${oneLine(pem)}"`);
}
