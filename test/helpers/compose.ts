/**
 * Reading the compose files as docker compose does, as far as the static checks need: YAML with merge keys
 * (`<<: *anchor`), `include`, and variable interpolation (`${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}`, `${VAR?error}`, `$$` for a literal `$`).
 */
import fs from "node:fs";
import path from "node:path";
import { CORE_SCHEMA, load, mergeTag } from "js-yaml";

export const ROOT = path.resolve(__dirname, "..", "..");
export const COMPOSE_FILE = path.join(ROOT, "docker-compose.yaml");

const YAML_SCHEMA = CORE_SCHEMA.withTags(mergeTag);

export type ComposeService = Record<string, unknown> & {
	image?: string;
	build?: string | { context?: string; dockerfile?: string };
	environment?: Record<string, string | number | boolean | null> | string[];
	healthcheck?: { test?: string | string[]; disable?: boolean };
	depends_on?: string[] | Record<string, { condition?: string }>;
	volumes?: Array<string | { type?: string; source?: string; target?: string }>;
	ports?: Array<string | number | { target?: number; published?: string | number }>;
	expose?: Array<string | number>;
	networks?: string[] | Record<string, unknown>;
	restart?: string;
	command?: string | string[];
	entrypoint?: string | string[];
	stop_grace_period?: string;
	container_name?: string;
};
export interface ComposeModel {
	name?: string;
	include?: Array<string | { path: string | string[] }>;
	services?: Record<string, ComposeService>;
	volumes?: Record<string, unknown>;
	networks?: Record<string, { internal?: boolean } | null>;
	[key: string]: unknown;
}

/** One parsed compose file: its path, its raw text, and its YAML (merge keys applied, no interpolation). */
export interface ComposeFile {
	file: string;
	text: string;
	model: ComposeModel;
}

export function readComposeFile(file: string): ComposeFile {
	const text = fs.readFileSync(file, "utf8");
	return { file, text, model: load(text, { schema: YAML_SCHEMA }) as ComposeModel };
}

/** The file and every file it includes (depth first), each once. */
export function composeFiles(file = COMPOSE_FILE): ComposeFile[] {
	const seen = new Map<string, ComposeFile>();
	const visit = (f: string): void => {
		if (seen.has(f)) return;
		const parsed = readComposeFile(f);
		seen.set(f, parsed);
		for (const entry of parsed.model.include ?? []) {
			const paths = typeof entry === "string" ? [entry] : [entry.path].flat();
			for (const p of paths) visit(path.resolve(path.dirname(f), p));
		}
	};
	visit(file);
	return [...seen.values()];
}

/** One `${...}` or `$VAR` reference in a compose file. */
export interface VariableUse {
	name: string;
	/** `:-`, `-`, `:?`, `?`, or "" for a bare reference. */
	operator: string;
	/** The default or the error message. */
	argument: string;
}

const REFERENCE =
	/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * Every variable reference in `text`, `$$` escapes (a literal `$` in the container) and comment lines skipped:
 * compose interpolates values, never comments.
 */
export function variableUses(text: string): VariableUse[] {
	const uses: VariableUse[] = [];
	const unescaped = text.replace(/^\s*#.*$/gm, "").replace(/\$\$/g, "");
	for (const m of unescaped.matchAll(REFERENCE)) {
		uses.push({ name: m[1] ?? m[4], operator: m[2] ?? "", argument: m[3] ?? "" });
	}
	return uses;
}

export class InterpolationError extends Error {}

/** Interpolates one string as compose does; a `:?`/`?` reference to an unset (or empty) variable throws. */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
	const ESCAPE = "\u0000";
	const replaced = value
		.replace(/\$\$/g, ESCAPE)
		.replace(REFERENCE, (_m, braced, op, arg, bare) => {
			const name = (braced ?? bare) as string;
			const v = env[name];
			const unset = v === undefined;
			const empty = unset || v === "";
			switch (op as string | undefined) {
				case ":-":
					return empty ? interpolate(arg, env) : (v as string);
				case "-":
					return unset ? interpolate(arg, env) : (v as string);
				case ":?":
					if (empty) throw new InterpolationError(`${name}: ${arg}`);
					return v as string;
				case "?":
					if (unset) throw new InterpolationError(`${name}: ${arg}`);
					return v as string;
				default:
					return v ?? "";
			}
		});
	return replaced.replace(new RegExp(ESCAPE, "g"), "$");
}

/** A deep copy of `node` with every string interpolated. */
export function interpolateDeep<T>(node: T, env: Record<string, string | undefined>): T {
	if (typeof node === "string") return interpolate(node, env) as T;
	if (Array.isArray(node)) return node.map(n => interpolateDeep(n, env)) as T;
	if (node && typeof node === "object") {
		return Object.fromEntries(
			Object.entries(node).map(([k, v]) => [k, interpolateDeep(v, env)])
		) as T;
	}
	return node;
}

/** The project as compose sees it: the services, volumes and networks of every file, each file's folder kept. */
export interface ComposeProject {
	services: Record<string, ComposeService & { $dir: string }>;
	volumes: Record<string, unknown>;
	networks: Record<string, { internal?: boolean } | null>;
}

export function composeProject(env: Record<string, string | undefined>): ComposeProject {
	const project: ComposeProject = { services: {}, volumes: {}, networks: {} };
	for (const { file, model } of composeFiles()) {
		const m = interpolateDeep(model, env);
		for (const [name, svc] of Object.entries(m.services ?? {})) {
			if (project.services[name]) throw new Error(`service ${name} defined twice`);
			project.services[name] = { ...svc, $dir: path.dirname(file) };
		}
		Object.assign(project.volumes, m.volumes ?? {});
		Object.assign(project.networks, m.networks ?? {});
	}
	return project;
}

/** Variables .env.example documents (`NAME=` at the start of a line), with their example values. */
export function envExample(): Map<string, string> {
	const text = fs.readFileSync(path.join(ROOT, ".env.example"), "utf8");
	return new Map([...text.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)].map(m => [m[1], m[2]]));
}

/** `environment` as a map, whichever of its two forms the file uses. */
export function environmentOf(svc: ComposeService): Record<string, string> {
	const env = svc.environment ?? {};
	if (Array.isArray(env)) {
		return Object.fromEntries(
			env.map(e => {
				const i = e.indexOf("=");
				return i < 0 ? [e, ""] : [e.slice(0, i), e.slice(i + 1)];
			})
		);
	}
	return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v == null ? "" : String(v)]));
}

/** Container ports a service listens on: `expose` and the container side of `ports`. */
export function containerPorts(svc: ComposeService): Set<number> {
	const ports = new Set<number>();
	for (const e of svc.expose ?? []) ports.add(Number(String(e).split("/")[0]));
	for (const p of svc.ports ?? []) {
		if (typeof p === "object") ports.add(Number(p.target));
		else ports.add(Number(String(p).split("/")[0].split(":").pop()));
	}
	return ports;
}

/** Bind mounts of a service: host path (absolute) → container path. Named volumes are left out. */
export function bindMounts(
	svc: ComposeService & { $dir: string }
): Array<{ host: string; container: string }> {
	const mounts: Array<{ host: string; container: string }> = [];
	for (const v of svc.volumes ?? []) {
		let source: string | undefined;
		let target: string | undefined;
		if (typeof v === "string") {
			const parts = v.split(":");
			if (parts.length < 2) continue;
			[source, target] = parts;
		} else if (v.type === "bind" || (v.type === undefined && v.source?.match(/^[./]/))) {
			source = v.source;
			target = v.target;
		}
		if (!source || !target || !/^[./~]/.test(source)) continue;
		mounts.push({ host: path.resolve(svc.$dir, source), container: target });
	}
	return mounts;
}

/** The host path behind a container path, through the service's bind mounts (null when none covers it). */
export function hostPathOf(
	svc: ComposeService & { $dir: string },
	containerPath: string
): string | null {
	const mount = bindMounts(svc)
		.filter(m => containerPath === m.container || containerPath.startsWith(`${m.container}/`))
		.sort((a, b) => b.container.length - a.container.length)[0];
	if (!mount) return null;
	return path.join(mount.host, path.relative(mount.container, containerPath));
}
