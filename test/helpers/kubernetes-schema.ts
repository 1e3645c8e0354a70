/**
 * Strict validation of rendered Kubernetes objects: what scripts/kubernetes-validate.mjs checks (the kubernetes-models
 * schemas' types, enums and required fields, and no superseded API version), plus what those schemas let through:
 * a field the API does not define, anywhere in the object. The apiserver's strict field validation
 * (`kubectl apply --validate=strict`) refuses such a field; the packages' compiled validators accept it, because the
 * OpenAPI they were generated from sets no additionalProperties. The same packages' type declarations, generated from
 * the same OpenAPI, list every field of every type, so they are what a field is looked up in (with the TypeScript
 * compiler, which resolves their imports and aliases as any user of the types would). A map of anything (labels,
 * annotations, ConfigMap data, resource quantities) is an index signature there, so its keys are free and its values
 * still checked; a type the API leaves open (an object with no declared fields) is reported as free-form, so a spec
 * can pin down where strictness stops. And no alpha or beta apiVersion at all, in any group.
 */
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { type K8sObject, validate } from "../../scripts/lib/kubernetes";

/** The model packages, by API group: the core group is kubernetes-models' `v1` folder. */
const PACKAGES = ["kubernetes-models", "@kubernetes-models/prometheus-operator"].map(name =>
	path.dirname(require.resolve(`${name}/package.json`))
);

export interface StrictReport {
	objects: number;
	/** `Kind/name: message`, the message naming the JSON path for a field the API does not define. */
	errors: string[];
	/** `Kind/name: path` of each object value whose type the API leaves open (no declared fields). */
	freeForm: string[];
}

/** The type declarations of group/version/kind, or null when no model package has the kind. */
function declarationFile(apiVersion: string, kind: string): string | null {
	const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
	for (const root of PACKAGES) {
		const file = path.join(root, ...(group ? [group, version] : [version]), `${kind}.d.ts`);
		if (fs.existsSync(file)) return file;
	}
	return null;
}

/** The stable versions of `kind` in every group the packages know, as `group/version` (the core group as `v1`). */
function stableVersionsOf(kind: string): string[] {
	const out: string[] = [];
	for (const root of PACKAGES) {
		for (const dir of fs.readdirSync(root, { withFileTypes: true })) {
			if (!dir.isDirectory() || dir.name.startsWith("_")) continue;
			if (/^v\d+$/.test(dir.name)) {
				if (fs.existsSync(path.join(root, dir.name, `${kind}.d.ts`))) out.push(dir.name);
				continue;
			}
			for (const v of fs.readdirSync(path.join(root, dir.name)))
				if (/^v\d+$/.test(v) && fs.existsSync(path.join(root, dir.name, v, `${kind}.d.ts`)))
					out.push(`${dir.name}/${v}`);
		}
	}
	return out;
}

/**
 * An alpha or beta apiVersion, refused whatever its group: the packages still carry removed ones (policy/v1beta1,
 * extensions/v1beta1), a kind that moved group has no newer version in its old one for the validator to find,
 * and a beta API added since Kubernetes 1.24 is off by default.
 */
function prerelease(o: K8sObject): string | null {
	const version = o.apiVersion.split("/").pop()!;
	if (!/^v\d+(alpha|beta)\d+$/.test(version)) return null;
	const stable = stableVersionsOf(o.kind);
	return `${o.apiVersion} is a pre-release API version (deprecated, removed or off by default)${
		stable.length ? `: ${o.kind} is served as ${stable.join(", ")}` : ""
	}`;
}

/** `a.b[0]["app.kubernetes.io/name"]`: kubectl's own way of naming a field in its strict-validation errors. */
function join(at: string, key: string | number): string {
	if (typeof key === "number") return `${at}[${key}]`;
	if (/^[A-Za-z_$][\w$]*$/.test(key)) return at ? `${at}.${key}` : key;
	return `${at}[${JSON.stringify(key)}]`;
}

class FieldChecker {
	private readonly checker: ts.TypeChecker;
	private readonly roots = new Map<string, ts.Type>();

	constructor(private readonly program: ts.Program) {
		this.checker = program.getTypeChecker();
	}

	/** The interface `I<Kind>` that the model's declaration file exports. */
	root(file: string, kind: string): ts.Type {
		const known = this.roots.get(file);
		if (known) return known;
		const source = this.program.getSourceFile(file);
		const module = source && this.checker.getSymbolAtLocation(source);
		const symbol =
			module && this.checker.getExportsOfModule(module).find(s => s.name === `I${kind}`);
		if (!symbol) throw new Error(`${file} declares no I${kind}`);
		const type = this.checker.getDeclaredTypeOfSymbol(symbol);
		this.roots.set(file, type);
		return type;
	}

	/** Every field of `value` that `type` does not declare, as errors; every open object as free-form. */
	check(value: unknown, type: ts.Type, at: string, errors: string[], freeForm: string[]): void {
		// Scalars are the compiled validators' part (types, enums, formats); only the shape is checked here.
		if (value === null || typeof value !== "object") return;
		if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) {
			freeForm.push(at);
			return;
		}
		if (type.isUnion()) {
			const shapes = type.types.filter(
				t => t.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)
			);
			const fitting = shapes.filter(t => this.checker.isArrayType(t) === Array.isArray(value));
			if (fitting.length === 0) return;
			// The member that fits best, so a misspelling is reported against the shape meant.
			let best: { errors: string[]; freeForm: string[] } | undefined;
			for (const t of fitting) {
				const trial = { errors: [] as string[], freeForm: [] as string[] };
				this.check(value, t, at, trial.errors, trial.freeForm);
				if (!best || trial.errors.length < best.errors.length) best = trial;
			}
			errors.push(...best!.errors);
			freeForm.push(...best!.freeForm);
			return;
		}
		if (Array.isArray(value)) {
			if (!this.checker.isArrayType(type)) return;
			const item = this.checker.getTypeArguments(type as ts.TypeReference)[0];
			value.forEach((v, i) => this.check(v, item, join(at, i), errors, freeForm));
			return;
		}
		const fields = this.checker.getPropertiesOfType(type);
		const map = this.checker.getIndexInfoOfType(type, ts.IndexKind.String);
		if (fields.length === 0 && !map) {
			freeForm.push(at);
			return;
		}
		for (const [key, v] of Object.entries(value)) {
			const field = type.getProperty(key);
			const where = join(at, key);
			if (field) this.check(v, this.checker.getTypeOfSymbol(field), where, errors, freeForm);
			else if (map) this.check(v, map.type, where, errors, freeForm);
			else errors.push(`unknown field "${where}"`);
		}
	}
}

let program: ts.Program | undefined;
let checker: FieldChecker | undefined;

/** One program over the model declarations these objects need, grown (reusing what it parsed) when more are. */
function fieldChecker(files: string[]): FieldChecker {
	if (!program || !checker || files.some(f => !program!.getSourceFile(f))) {
		const roots = new Set([...(program?.getRootFileNames() ?? []), ...files]);
		program = ts.createProgram({
			rootNames: [...roots],
			options: {
				noEmit: true,
				skipLibCheck: true,
				types: [],
				module: ts.ModuleKind.ESNext,
				moduleResolution: ts.ModuleResolutionKind.Bundler
			},
			oldProgram: program
		});
		checker = new FieldChecker(program);
	}
	return checker;
}

/** Each object against its schema, strictly: scripts/kubernetes-validate.mjs's findings and every unknown field. */
export function validateStrictly(objects: K8sObject[]): StrictReport {
	const report: StrictReport = { ...validate(objects), freeForm: [] };
	const files = objects.map(o => declarationFile(o.apiVersion, o.kind));
	const fields = fieldChecker([...new Set(files.filter((f): f is string => !!f))]);
	objects.forEach((o, i) => {
		const file = files[i];
		// A kind no package has is already an error of the validator's ("not in the schemas of a current release").
		if (!file) return;
		const where = `${o.kind}/${o.metadata?.name}`;
		const errors: string[] = [];
		// The validator names the newer version of the same group where there is one: that says it already.
		const early = prerelease(o);
		if (early && !report.errors.some(e => e.startsWith(`${where}: `) && /superseded/.test(e)))
			errors.push(early);
		const freeForm: string[] = [];
		fields.check(o, fields.root(file, o.kind), "", errors, freeForm);
		report.errors.push(...errors.map(e => `${where}: ${e}`));
		report.freeForm.push(...freeForm.map(p => `${where}: ${p}`));
	});
	return report;
}
