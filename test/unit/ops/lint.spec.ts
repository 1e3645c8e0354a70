/**
 * The operations files through real linters: shellcheck on every operator and setup script, dockerfilelint on every
 * Dockerfile (hadolint is not installable here); and what the image must be, read from docker/Dockerfile.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const DOCKERFILELINT = path.join(ROOT, "node_modules", ".bin", "dockerfilelint");

function run(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
	return new Promise((resolve, reject) => {
		const child = spawn(cmd, args, { cwd: ROOT });
		let output = "";
		child.stdout.on("data", d => (output += d));
		child.stderr.on("data", d => (output += d));
		child.on("error", reject);
		child.on("close", code => resolve({ code, output }));
	});
}

const shellScripts = (dir: string): string[] =>
	fs
		.readdirSync(path.join(ROOT, dir))
		.filter(f => f.endsWith(".sh"))
		.map(f => `${dir}/${f}`);

function scratchFile(name: string, text: string): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-lint-"));
	const file = path.join(dir, name);
	fs.writeFileSync(file, text);
	return file;
}

describe("shellcheck", () => {
	it("finds nothing in scripts/*.sh, scripts/lib/*.sh and the compose setup scripts", async () => {
		const scripts = [
			...shellScripts("scripts"),
			...shellScripts("scripts/lib"),
			...shellScripts("docker/mongodb"),
			...shellScripts("docker/minio"),
			...shellScripts("docker/elasticsearch"),
			"test/stand-ins/mongodump",
			"test/stand-ins/mongorestore",
			"test/stand-ins/mongo-tools-common.sh"
		];
		expect(scripts).toEqual(
			expect.arrayContaining([
				"scripts/backup.sh",
				"scripts/restore.sh",
				"scripts/health-check.sh",
				"scripts/lib/backup-common.sh",
				"docker/mongodb/init-users.sh",
				"docker/mongodb/replica-set.sh",
				"docker/mongodb/secrets.sh"
			])
		);
		const r = await run("shellcheck", ["-x", ...scripts]);
		expect(r.output).toBe("");
		expect(r.code).toBe(0);
	});

	it("reports an unquoted expansion (the check can fail)", async () => {
		const file = scratchFile("bad.sh", "#!/usr/bin/env bash\nrm -rf $1/data\n");
		const r = await run("shellcheck", [file]);
		expect(r.code).not.toBe(0);
		expect(r.output).toContain("SC2086");
	});
});

describe("dockerfilelint", () => {
	it.each([
		"docker/Dockerfile",
		"docker/nats-exporter/Dockerfile",
		"docker/mongodb-exporter/Dockerfile"
	])("finds nothing in %s", async file => {
		const r = await run(DOCKERFILELINT, ["-j", file]);
		const report = JSON.parse(r.output.slice(r.output.indexOf("{"))) as {
			files: Array<{ issues_count: number; issues: unknown[] }>;
		};
		expect(report.files[0].issues).toEqual([]);
		expect(r.code).toBe(0);
	});

	it("reports a broken instruction (the check can fail)", async () => {
		const file = scratchFile("Dockerfile", "FROM node:22\nRUN apt-get install curl\nEXPOSE http\n");
		const r = await run(DOCKERFILELINT, ["-j", file]);
		expect(r.code).not.toBe(0);
	});
});

describe("docker/Dockerfile", () => {
	const text = fs.readFileSync(path.join(ROOT, "docker", "Dockerfile"), "utf8");
	const stages = text.split(/^FROM /m).slice(1);
	const runtime = stages[stages.length - 1];

	it("builds on Node 22 in two stages; the runtime stage has production dependencies and dist only", () => {
		expect(stages).toHaveLength(2);
		for (const s of stages) expect(s).toMatch(/^node:22-/);
		expect(stages[0]).toMatch(/RUN npm run build/);
		expect(runtime).toMatch(/RUN npm ci --omit=dev .*--ignore-scripts/);
		expect(runtime).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
		expect(runtime).not.toMatch(/COPY (?!--from)(?!package).*\bnode_modules\b/);
	});

	it("runs as the unprivileged node user, with a healthcheck, started by npm start", () => {
		expect(runtime).toMatch(/^USER node$/m);
		expect(runtime).toMatch(/^HEALTHCHECK /m);
		expect(runtime.match(/^CMD .*$/gm)).toEqual(['CMD ["npm", "start"]']);
		expect(text).not.toMatch(/^ENTRYPOINT/m);
		const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
		expect(pkg.scripts.start).toBe(
			"MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} exec node dist/server.js"
		);
	});

	it("keeps .env out of the build context", () => {
		const ignored = fs.readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n");
		expect(ignored).toEqual(expect.arrayContaining([".env", "node_modules", "dist"]));
	});
});
