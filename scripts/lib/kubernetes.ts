/**
 * deploy/kubernetes as data: each overlay rendered by a real kustomize (kubectl's), validated against the Kubernetes
 * OpenAPI schemas (scripts/kubernetes-validate.mjs), and the environment Kubernetes would give a container worked
 * out as the kubelet does (envFrom, then env in order, `$(VAR)` expanded from what came before). Used by the specs
 * under test/unit/ops and test/integration/kubernetes-env.spec.ts.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { loadAll } from "js-yaml";
import { ROOT, findTool, makeKeyPair } from "./cluster";

export const KUSTOMIZE_DIR = path.join(ROOT, "deploy", "kubernetes");
export const OVERLAYS = ["dev", "prod"] as const;
export type Overlay = (typeof OVERLAYS)[number];

/** A rendered object, loosely typed: the schemas check the shapes, the specs read what they need. */
export interface K8sObject {
	apiVersion: string;
	kind: string;
	metadata: { name: string; namespace?: string; labels?: Record<string, string> };
	[field: string]: any;
}

/** kubectl, with a kustomize new enough for the `patches`, `labels` and `replicas` fields (v5). */
export function kubectl(): string {
	const bin = findTool("kubectl");
	const version = execFileSync(bin, ["version", "--client"], { encoding: "utf8" });
	const m = /Kustomize Version: v(\d+)\.(\d+)/.exec(version);
	if (!m || Number(m[1]) < 5) {
		throw new Error(
			`${bin} embeds kustomize ${m ? `v${m[1]}.${m[2]}` : "(none)"}; deploy/kubernetes needs kustomize v5 (kubectl 1.27 or later)`
		);
	}
	return bin;
}

/** `kubectl kustomize` of an overlay, as objects. */
export function render(overlay: Overlay): K8sObject[] {
	const out = execFileSync(
		kubectl(),
		["kustomize", path.join(KUSTOMIZE_DIR, "overlays", overlay)],
		{
			encoding: "utf8",
			maxBuffer: 64 * 1024 * 1024
		}
	);
	return (loadAll(out) as K8sObject[]).filter(Boolean);
}

/** What scripts/kubernetes-validate.mjs says of these objects. */
export function validate(objects: K8sObject[]): { objects: number; errors: string[] } {
	const run = spawnSync(process.execPath, [path.join(ROOT, "scripts", "kubernetes-validate.mjs")], {
		input: objects.map(o => JSON.stringify(o)).join("\n---\n"),
		encoding: "utf8",
		cwd: ROOT
	});
	if (!run.stdout) throw new Error(`kubernetes-validate.mjs failed:\n${run.stderr}`);
	return JSON.parse(run.stdout);
}

export const find = (objects: K8sObject[], kind: string, name: string): K8sObject | undefined =>
	objects.find(o => o.kind === kind && o.metadata.name === name);

/**
 * The environment the kubelet gives `container` of a pod named `podName`: `envFrom` sources first, then `env` in
 * order, each value's `$(VAR)` replaced by a variable defined before it (`$$` is a literal `$`). Stricter than the
 * kubelet in one way: a reference left unresolved (which Kubernetes would pass on as the text `$(VAR)`) throws,
 * and so does a missing ConfigMap, Secret or key (the kubelet would not start the container).
 */
export function containerEnv(
	objects: K8sObject[],
	container: { env?: any[]; envFrom?: any[] },
	opts: { podName: string; namespace?: string; secrets: Record<string, Record<string, string>> }
): Record<string, string> {
	const env: Record<string, string> = {};
	const configMap = (name: string): Record<string, string> => {
		const cm = find(objects, "ConfigMap", name);
		if (!cm) throw new Error(`ConfigMap ${name} is not among the rendered objects`);
		return cm.data ?? {};
	};
	const secret = (name: string): Record<string, string> => {
		const s = opts.secrets[name];
		if (!s) throw new Error(`Secret ${name} has no value in this test`);
		return s;
	};
	const key = (source: Record<string, string>, what: string, k: string): string => {
		if (!(k in source)) throw new Error(`${what} has no key ${k}`);
		return source[k];
	};
	for (const from of container.envFrom ?? []) {
		const source = from.configMapRef
			? configMap(from.configMapRef.name)
			: secret(from.secretRef.name);
		for (const [k, v] of Object.entries(source)) env[`${from.prefix ?? ""}${k}`] = v;
	}
	for (const e of container.env ?? []) {
		if (e.value !== undefined) {
			env[e.name] = String(e.value).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name) => {
				if (all === "$$") return "$";
				if (!(name in env))
					throw new Error(`${e.name} refers to $(${name}), defined nowhere before it`);
				return env[name];
			});
		} else if (e.valueFrom?.configMapKeyRef) {
			const ref = e.valueFrom.configMapKeyRef;
			env[e.name] = key(configMap(ref.name), `ConfigMap ${ref.name}`, ref.key);
		} else if (e.valueFrom?.secretKeyRef) {
			const ref = e.valueFrom.secretKeyRef;
			env[e.name] = key(secret(ref.name), `Secret ${ref.name}`, ref.key);
		} else if (e.valueFrom?.fieldRef) {
			const field = e.valueFrom.fieldRef.fieldPath;
			const fields: Record<string, string> = {
				"metadata.name": opts.podName,
				"metadata.namespace": opts.namespace ?? "default"
			};
			if (!(field in fields))
				throw new Error(`${e.name}: fieldRef ${field} is not worked out here`);
			env[e.name] = fields[field];
		} else {
			throw new Error(`${e.name}: a kind of value this helper does not know`);
		}
	}
	return env;
}

/** Secrets the docs create: `kubectl create secret <type> <name>` with the lines continuing it. */
export function documentedSecrets(): Map<string, string> {
	const text = fs
		.readFileSync(path.join(ROOT, "docs", "kubernetes.md"), "utf8")
		.replace(/\\\n/g, " ");
	const out = new Map<string, string>();
	for (const m of text.matchAll(
		/kubectl (?:-n \S+ )?create secret (?:generic|tls) ([a-z0-9-]+)([^\n]*)/g
	))
		out.set(m[1], m[2]);
	return out;
}

/** Test values for every Secret key the docs create (the JWT pair is a real one: config/ checks its PEM). */
export function testSecrets(): Record<string, Record<string, string>> {
	const keys = makeKeyPair();
	const out: Record<string, Record<string, string>> = {};
	for (const [name, command] of documentedSecrets()) {
		out[name] = {};
		for (const m of command.matchAll(/--from-literal=([A-Za-z_][A-Za-z0-9_]*)=/g))
			out[name][m[1]] = `test-${m[1].toLowerCase().replace(/_/g, "-")}`;
	}
	out["flashmart-jwt"] = { JWT_PRIVATE_KEY: keys.privateKey, JWT_PUBLIC_KEY: keys.publicKey };
	out["flashmart-admin"].ADMIN_EMAIL = "admin@shop.example.com";
	return out;
}
