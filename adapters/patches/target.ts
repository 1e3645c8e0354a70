/**
 * What every patch states about the library it changes: the package, the versions whose internals it was written
 * against, and how it checks both at apply time. A patch outside its range warns and leaves the library as it is:
 * each patch here only makes a library faster or its output standard, so the library's own code is always a working
 * fallback, and a node must not refuse to start over it. The patch's test is what fails, so the change is seen.
 */
import fs from "node:fs";
import path from "node:path";

export interface PatchTarget {
	/** The npm package whose internals the patch changes. */
	package: string;
	/** `~x.y.z` (same minor, at least the patch level), `^x.y.z` (npm's caret) or an exact `x.y.z`. */
	range: string;
}

type Version = [number, number, number];

function parse(version: string): Version | null {
	const m = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(version.trim());
	return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

const compare = (a: Version, b: Version) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/** Whether `version` satisfies `range` (the three forms of PatchTarget.range; anything else never does). */
export function satisfies(version: string, range: string): boolean {
	const v = parse(version);
	const op = range[0] === "~" || range[0] === "^" ? range[0] : "";
	const base = parse(op ? range.slice(1) : range);
	if (!v || !base) return false;
	if (compare(v, base) < 0) return false;
	if (op === "") return compare(v, base) === 0;
	if (op === "~") return v[0] === base[0] && v[1] === base[1];
	// Caret: the left-most non-zero part stays (^0.15.2 is <0.16.0, ^2.29.3 is <3.0.0).
	if (base[0] > 0) return v[0] === base[0];
	if (base[1] > 0) return v[0] === 0 && v[1] === base[1];
	return compare(v, base) === 0;
}

/**
 * The version of `pkg` that `require` gives from here: the package.json above its entry point (read from disk, since
 * a package's `exports` may hide its package.json from `require`).
 */
export function installedVersion(pkg: string): string | null {
	let dir: string;
	try {
		dir = path.dirname(require.resolve(pkg));
	} catch {
		return null;
	}
	for (;;) {
		const file = path.join(dir, "package.json");
		if (fs.existsSync(file)) {
			const json = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string; version?: string };
			if (json.name === pkg) return json.version ?? null;
		}
		const up = path.dirname(dir);
		if (up === dir) return null;
		dir = up;
	}
}

/** Why `target` cannot be patched here (not installed, or outside its range), or null when it can. */
export function outOfRange(target: PatchTarget): string | null {
	const version = installedVersion(target.package);
	if (version === null) return `${target.package} is not installed`;
	if (!satisfies(version, target.range)) {
		return `${target.package} ${version} is outside ${target.range}`;
	}
	return null;
}

/** Says once, on the process's warning channel (stderr; no logger exists yet at patch time), that a patch is off. */
export function warnSkipped(patch: string, reason: string): void {
	process.emitWarning(`${patch} not applied: ${reason}; the library's own code runs`, {
		code: "FLASHMART_PATCH_SKIPPED"
	});
}

/** On a replacement function: the library's function it replaced (a global symbol, so any copy of a patch sees it). */
const ORIGINAL = Symbol.for("flashmart.patches.original");

/** Marks `replacement` as standing in for `original`; returns it. */
export function replacing<F extends Function>(replacement: F, original: Function): F {
	Object.defineProperty(replacement, ORIGINAL, { value: original });
	return replacement;
}

/** The library's own function behind `fn` (fn itself when no patch replaced it), for probes to read. */
export function unpatched(fn: unknown): unknown {
	let f = fn;
	while (typeof f === "function" && (f as unknown as Record<symbol, unknown>)[ORIGINAL]) {
		f = (f as unknown as Record<symbol, unknown>)[ORIGINAL];
	}
	return f;
}
