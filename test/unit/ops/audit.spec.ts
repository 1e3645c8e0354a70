/**
 * scripts/audit.mjs, the CI's dependency scan: against an `npm` on PATH that answers as npm audit does (a report with
 * an advisory, a clean report, the 405 this machine's registry gives), and once against the real npm.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const SCRIPT = path.join(__dirname, "../../../scripts/audit.mjs");
const ADVISORY = {
	source: 1096727,
	name: "example-lib",
	dependency: "example-lib",
	title: "Prototype pollution in example-lib",
	url: "https://github.com/advisories/GHSA-xxxx-yyyy-zzzz",
	severity: "high",
	cwe: ["CWE-1321"],
	cvss: { score: 7.5, vectorString: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H" },
	range: "<1.2.3"
};
/** npm audit --json with one high advisory (npm exits 1 then). */
const FOUND = {
	auditReportVersion: 2,
	vulnerabilities: {
		"example-lib": {
			name: "example-lib",
			severity: "high",
			isDirect: false,
			via: [ADVISORY],
			effects: ["moleculer-web"],
			range: "<1.2.3",
			nodes: ["node_modules/example-lib"],
			fixAvailable: true
		},
		"moleculer-web": {
			name: "moleculer-web",
			severity: "high",
			isDirect: true,
			via: ["example-lib"],
			effects: [],
			range: "*",
			nodes: ["node_modules/moleculer-web"],
			fixAvailable: true
		}
	},
	metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high: 2, critical: 0, total: 2 } }
};
/** What npm audit --json prints here: the registry refuses the bulk advisory POST. */
const REFUSED = {
	message:
		"405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk",
	method: "POST",
	uri: "https://registry.npmjs.org/-/npm/v1/security/advisories/bulk",
	statusCode: 405,
	body: "",
	error: {
		code: "E405",
		summary:
			"405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk",
		detail: ""
	}
};

function run(report: object | null, exitCode: number, env: Record<string, string> = {}) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-audit-"));
	const env2: Record<string, string> = { ...(process.env as Record<string, string>), ...env };
	if (report) {
		const npm = path.join(dir, "npm");
		fs.writeFileSync(path.join(dir, "report.json"), JSON.stringify(report));
		fs.writeFileSync(
			npm,
			`#!/bin/sh\n[ "$1 $2 $3" = "audit --omit=dev --json" ] || exit 64\ncat "${dir}/report.json"\nexit ${exitCode}\n`
		);
		fs.chmodSync(npm, 0o755);
		env2.PATH = `${dir}:${process.env.PATH}`;
	}
	const res = spawnSync(process.execPath, [SCRIPT], { encoding: "utf8", env: env2 });
	return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

function acceptedFile(entries: object[]): string {
	const file = path.join(
		fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-audit-")),
		"accepted.json"
	);
	fs.writeFileSync(file, JSON.stringify({ accepted: entries }));
	return file;
}

describe("scripts/audit.mjs", () => {
	it("fails on an advisory at or above the level that is not accepted, naming it", () => {
		const res = run(FOUND, 1);
		expect(res.status).toBe(1);
		expect(res.out).toContain("high example-lib: Prototype pollution in example-lib");
		expect(res.out).not.toContain("moleculer-web:"); // reported through the package that has it
	});

	it("passes an advisory listed in the accepted file with a reason, and one below the level", () => {
		const accepted = acceptedFile([{ url: ADVISORY.url, reason: "not reachable from our code" }]);
		expect(run(FOUND, 1, { AUDIT_ACCEPTED: accepted }).status).toBe(0);
		expect(run(FOUND, 1, { AUDIT_LEVEL: "critical" }).status).toBe(0);
	});

	it("refuses an accepted entry without a reason", () => {
		const accepted = acceptedFile([{ url: ADVISORY.url }]);
		expect(run(FOUND, 1, { AUDIT_ACCEPTED: accepted }).status).not.toBe(0);
	});

	it("says the dependencies were not scanned when the registry refuses, and fails then if AUDIT_REQUIRED=1", () => {
		const soft = run(REFUSED, 1);
		expect(soft.status).toBe(0);
		expect(soft.out).toMatch(/did not answer \(405 Method Not Allowed.*not scanned/);
		expect(run(REFUSED, 1, { AUDIT_REQUIRED: "1" }).status).toBe(1);
	});

	it("runs against the real npm and registry", () => {
		const res = run(null, 0);
		// This machine's registry refuses the advisory endpoint; where it answers, the scan must be clean.
		expect(res.out).toMatch(/not scanned|no advisory at or above high/);
		expect(res.status).toBe(0);
	}, 60_000);
});
