// Validates Kubernetes objects (the multi-document YAML of `kubectl kustomize`, on standard input) against the
// OpenAPI schemas of a current Kubernetes release and of the Prometheus Operator, as the kubernetes-models packages
// ship them (no network), and refuses API versions that a newer one of the same kind supersedes (deprecated or
// removed: extensions/v1beta1, policy/v1beta1, autoscaling/v2beta2, ...). ESM-only libraries, hence this separate
// process: `kubectl kustomize deploy/kubernetes/overlays/prod | node scripts/kubernetes-validate.mjs`.
// Prints {"objects": n, "errors": [...]} and exits 1 when any object is invalid.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { loadAll } from "js-yaml";

const require = createRequire(import.meta.url);
/** Model packages by API group: the core group is kubernetes-models' `v1` folder. */
const PACKAGES = [
	{
		root: path.dirname(require.resolve("kubernetes-models/package.json")),
		name: "kubernetes-models"
	},
	{
		root: path.dirname(require.resolve("@kubernetes-models/prometheus-operator/package.json")),
		name: "@kubernetes-models/prometheus-operator"
	}
];

/** Where the model of group/version/kind lives, or null. */
function modelPath(group, version, kind) {
	for (const pkg of PACKAGES) {
		const file = path.join(pkg.root, ...(group ? [group, version] : [version]), `${kind}.js`);
		if (fs.existsSync(file)) return file;
	}
	return null;
}

/** Every version of a kind in its group that the packages know, e.g. autoscaling HPA: v1, v2, v2beta1, v2beta2. */
function versionsOf(group, kind) {
	const out = [];
	for (const pkg of PACKAGES) {
		const dir = group ? path.join(pkg.root, group) : pkg.root;
		if (!fs.existsSync(dir)) continue;
		for (const v of fs.readdirSync(dir)) {
			if (/^v\d+((alpha|beta)\d+)?$/.test(v) && fs.existsSync(path.join(dir, v, `${kind}.js`)))
				out.push(v);
		}
	}
	return out;
}

/** Kubernetes' own order of versions: GA above beta above alpha, then by number. */
function rank(v) {
	const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
	const stage = m[2] === "alpha" ? 0 : m[2] === "beta" ? 1 : 2;
	return stage * 1e6 + Number(m[1]) * 1e3 + Number(m[3] ?? 0);
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const objects = loadAll(input).filter(Boolean);
const errors = [];
for (const obj of objects) {
	const where = `${obj.kind}/${obj.metadata?.name}`;
	const [group, version] = obj.apiVersion.includes("/")
		? obj.apiVersion.split("/")
		: ["", obj.apiVersion];
	const file = modelPath(group, version, obj.kind);
	if (!file) {
		errors.push(
			`${where}: ${obj.apiVersion} ${obj.kind} is not in the schemas of a current release`
		);
		continue;
	}
	const newest = versionsOf(group, obj.kind).sort((a, b) => rank(b) - rank(a))[0];
	if (newest !== version) {
		errors.push(
			`${where}: ${obj.apiVersion} is superseded by ${group ? `${group}/` : ""}${newest}`
		);
	}
	const Model = (await import(file))[obj.kind];
	try {
		new Model(obj).validate();
	} catch (err) {
		errors.push(`${where}: ${err.message}`);
	}
}
process.stdout.write(JSON.stringify({ objects: objects.length, errors }));
process.exit(errors.length ? 1 : 0);
