/**
 * The compose stack, checked statically (no Docker engine here): every compose file against the Compose
 * specification's JSON schema, then what operators rely on: healthchecks, documented variables, secrets without
 * defaults, Prometheus targets and Grafana datasources that exist, mounted files that exist, scalable nodes.
 */
import fs from "node:fs";
import path from "node:path";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { load } from "js-yaml";
import { loadConfig } from "../../../config";
import { makeKeyPair } from "../../../scripts/lib/cluster";
import {
	type ComposeProject,
	type ComposeService,
	InterpolationError,
	ROOT,
	bindMounts,
	composeFiles,
	composeProject,
	containerPorts,
	envExample,
	environmentOf,
	hostPathOf,
	interpolate,
	variableUses
} from "../../helpers/compose";

// dclint ships the Compose specification's schema (compose-spec/compose-spec, schema/compose-spec.json).
const SCHEMA_FILE = path.join(ROOT, "node_modules", "dclint", "schemas", "compose.schema.json");

/** Names of variables that hold secrets: none may have a default, anywhere. */
const SECRET = /(PASSWORD|SECRET|_KEY$|ACCESS_KEY|TOKEN|_USER$|ROOT_USER)/;

/** The application's node groups (common to every part of FlashMart): compose service → SERVICES. */
const APP_NODES: Record<string, string> = {
	gateway: "api",
	users: "users",
	catalog: "products,media",
	commerce: "inventory,carts,orders,pricing",
	payments: "payments,notifications"
};

/** An environment as an operator's .env would give it: every example value, a made-up one for each secret. */
function operatorEnv(): Record<string, string> {
	const env: Record<string, string> = {};
	for (const [name, value] of envExample()) env[name] = value || `test-${name.toLowerCase()}`;
	return env;
}

const files = composeFiles();
let project: ComposeProject;

beforeAll(() => {
	project = composeProject(operatorEnv());
});

const services = (): Array<[string, ComposeService & { $dir: string }]> =>
	Object.entries(project.services);
const isOneShot = (name: string): boolean => {
	const dependents = services().filter(([, s]) => dependsOn(s)[name]);
	// A job runs once and exits; whoever needs its work waits for it to succeed.
	return (
		project.services[name].restart === "no" &&
		dependents.every(([, s]) => dependsOn(s)[name] === "service_completed_successfully")
	);
};
function dependsOn(svc: ComposeService): Record<string, string> {
	const d = svc.depends_on ?? {};
	if (Array.isArray(d)) return Object.fromEntries(d.map(n => [n, "service_started"]));
	return Object.fromEntries(
		Object.entries(d).map(([n, v]) => [n, v?.condition ?? "service_started"])
	);
}
/** Seconds of a compose duration ("30s", "1m30s", "500ms"). */
function seconds(duration: string): number {
	let total = 0;
	for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
		total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as "ms" | "s" | "m" | "h"];
	}
	return total;
}
/** host:port of a scrape target or a URL. */
function hostPort(target: string): { host: string; port: number } {
	if (target.includes("://")) {
		const u = new URL(target);
		return {
			host: u.hostname,
			port: Number(u.port || (u.protocol === "https:" ? 443 : 80))
		};
	}
	const i = target.lastIndexOf(":");
	return { host: target.slice(0, i), port: Number(target.slice(i + 1)) };
}

/** The Compose spec's validator. Its `$schema` is draft-07 spelled with https, which Ajv does not know by that id. */
function composeValidator(): ReturnType<Ajv["compile"]> {
	const ajv = new Ajv({ allErrors: true, strict: false });
	addFormats(ajv);
	const { $schema: _draft, ...schema } = JSON.parse(fs.readFileSync(SCHEMA_FILE, "utf8"));
	return ajv.compile(schema);
}

describe("compose files", () => {
	it("include the infrastructure file from docker-compose.yaml", () => {
		expect(files.map(f => path.relative(ROOT, f.file))).toEqual([
			"docker-compose.yaml",
			"docker-compose.infrastructure.yaml"
		]);
	});

	it.each(files.map(f => [path.relative(ROOT, f.file), f] as const))(
		"%s is valid against the Compose specification's JSON schema",
		(_name, f) => {
			const validate = composeValidator();
			const valid = validate(f.model);
			expect(validate.errors ?? []).toEqual([]);
			expect(valid).toBe(true);
		}
	);

	it("stay valid against the schema with an operator's .env interpolated", () => {
		const validate = composeValidator();
		for (const f of files) {
			const model = JSON.parse(interpolate(JSON.stringify(f.model), operatorEnv()));
			expect({ file: f.file, errors: validate(model) ? [] : validate.errors }).toEqual({
				file: f.file,
				errors: []
			});
		}
	});

	it("the schema rejects what compose rejects (the check can fail)", () => {
		const validate = composeValidator();
		expect(
			validate({ services: { a: { image: "x", healthcheck: { tset: ["CMD", "true"] } } } })
		).toBe(false);
		expect(
			validate({ services: { a: { image: "x", depends_on: { b: { condition: "up" } } } } })
		).toBe(false);
	});
});

describe("variables and secrets", () => {
	it("documents every variable the compose files use in .env.example", () => {
		const documented = envExample();
		const used = new Set(files.flatMap(f => variableUses(f.text).map(u => u.name)));
		expect([...used].filter(v => !documented.has(v)).sort()).toEqual([]);
	});

	it("gives no secret a default: every use of one is ${VAR:?message}", () => {
		const offenders = files.flatMap(f =>
			variableUses(f.text)
				.filter(u => SECRET.test(u.name) && !(u.operator === ":?" && u.argument.trim() !== ""))
				.map(
					u => `${path.basename(f.file)}: ${u.name} used as \${${u.name}${u.operator}${u.argument}}`
				)
		);
		expect(offenders).toEqual([]);
	});

	it("leaves every secret of the compose stack empty in .env.example", () => {
		const documented = envExample();
		const secrets = new Set(
			files.flatMap(f =>
				variableUses(f.text)
					.filter(u => SECRET.test(u.name))
					.map(u => u.name)
			)
		);
		expect(secrets.size).toBeGreaterThan(15);
		expect([...secrets].filter(s => documented.get(s) !== "")).toEqual([]);
	});

	it("never writes a password or key as a literal in a container's environment", () => {
		const literal: string[] = [];
		for (const f of files) {
			for (const [name, svc] of Object.entries(f.model.services ?? {})) {
				for (const [key, value] of Object.entries(environmentOf(svc))) {
					if (!/(PASSWORD|SECRET|ACCESS_KEY|PRIVATE_KEY|AUTH)$/.test(key)) continue;
					if (!/^\$\{[A-Z0-9_]+:\?[^}]+\}$/.test(value)) literal.push(`${name}.${key}=${value}`);
				}
				// URLs carrying credentials must take them from required variables too.
				for (const [key, value] of Object.entries(environmentOf(svc))) {
					const userinfo = value.match(/^[a-z]+:\/\/([^@/]+)@/)?.[1];
					if (!userinfo) continue;
					const rest = userinfo.replace(/\$\{[A-Z0-9_]+:\?[^}]+\}/g, "").replace(/:/g, "");
					if (rest !== "") literal.push(`${name}.${key}: ${userinfo}`);
				}
			}
		}
		expect(literal).toEqual([]);
	});

	it("stops with the variable's message when a secret is missing", () => {
		const env = operatorEnv();
		for (const missing of [
			"MONGO_APP_PASSWORD",
			"NATS_PASSWORD",
			"GRAFANA_ADMIN_PASSWORD",
			"ELASTIC_PASSWORD"
		]) {
			expect(() => composeProject({ ...env, [missing]: "" })).toThrow(InterpolationError);
			expect(() => composeProject({ ...env, [missing]: undefined })).toThrow(
				new RegExp(`^${missing}: set ${missing} in \\.env`)
			);
		}
	});
});

describe("services", () => {
	it("has the fixed service names of the stack", () => {
		expect(Object.keys(project.services).sort()).toEqual(
			[
				...Object.keys(APP_NODES),
				"mongodb",
				"mongodb-keyfile",
				"mongodb-setup",
				"mongodb-exporter",
				"redis-exporter",
				"nats",
				"nats-exporter",
				"redis",
				"minio",
				"minio-setup",
				"elasticsearch",
				"elasticsearch-setup",
				"elasticsearch-exporter",
				"kibana",
				"kibana-setup",
				"prometheus",
				"alertmanager",
				"grafana",
				"jaeger",
				"node-exporter",
				"cadvisor"
			].sort()
		);
	});

	it("gives every long-running service a healthcheck; one-shot jobs are awaited until they succeed", () => {
		const missing = services()
			.filter(([name, s]) => {
				const hc = s.healthcheck;
				const has = hc && !hc.disable && Array.isArray(hc.test) && hc.test[0] !== "NONE";
				return !has && !isOneShot(name);
			})
			.map(([name]) => name);
		expect(missing).toEqual([]);
		expect(
			services()
				.filter(([n]) => isOneShot(n))
				.map(([n]) => n)
				.sort()
		).toEqual([
			"elasticsearch-setup",
			"kibana-setup",
			"minio-setup",
			"mongodb-keyfile",
			"mongodb-setup"
		]);
	});

	it("waits on conditions, never on a container merely started", () => {
		const problems: string[] = [];
		for (const [name, s] of services()) {
			for (const [dep, condition] of Object.entries(dependsOn(s))) {
				if (!project.services[dep]) problems.push(`${name} -> ${dep}: no such service`);
				else if (condition === "service_healthy" && !project.services[dep].healthcheck)
					problems.push(`${name} -> ${dep}: healthy without a healthcheck`);
				else if (condition === "service_completed_successfully" && !isOneShot(dep))
					problems.push(`${name} -> ${dep}: completion of a long-running service`);
				else if (!["service_healthy", "service_completed_successfully"].includes(condition))
					problems.push(`${name} -> ${dep}: ${condition}`);
			}
		}
		expect(problems).toEqual([]);
	});

	it("declares every named volume and keeps state of every store on one", () => {
		const used = new Set<string>();
		for (const [, s] of services()) {
			for (const v of s.volumes ?? []) {
				const source = typeof v === "string" ? v.split(":")[0] : v.source;
				if (source && !/^[./~]/.test(source)) used.add(source);
			}
		}
		expect([...used].filter(v => !(v in project.volumes))).toEqual([]);
		for (const store of ["mongodb", "nats", "minio", "elasticsearch", "prometheus", "grafana"]) {
			expect(used).toContain(`${store}-data`);
		}
	});

	it("keeps the backend network internal and publishes only through another network", () => {
		expect(project.networks.backend?.internal).toBe(true);
		for (const [name, s] of services()) {
			const nets = Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {});
			expect({ name, backend: nets.includes("backend") }).toEqual({ name, backend: true });
			if ((s.ports ?? []).length > 0) {
				expect({ name, outside: nets.some(n => !project.networks[n]?.internal) }).toEqual({
					name,
					outside: true
				});
			}
		}
	});

	it("binds every published port except the gateway's to PUBLISH_ADDRESS (loopback by default)", () => {
		const env = operatorEnv();
		expect(env.PUBLISH_ADDRESS).toBe("127.0.0.1");
		for (const [name, s] of services()) {
			if (name === "gateway") continue;
			for (const p of s.ports ?? [])
				expect(`${name} ${String(p)}`).toMatch(/^\S+ 127\.0\.0\.1:\d+:\d+$/);
		}
	});

	it("uses MongoDB 5.0, the newest server the bundled driver (3.7) supports", () => {
		expect(project.services.mongodb.image).toBe("mongo:5.0");
	});
});

describe("application nodes", () => {
	it("run one image each with their SERVICES, the app user, and NATS with credentials", () => {
		const env = operatorEnv();
		const images = new Set<string>();
		for (const [name, groups] of Object.entries(APP_NODES)) {
			const s = project.services[name];
			const e = environmentOf(s);
			images.add(`${s.image} ${JSON.stringify(s.build)}`);
			expect({ name, SERVICES: e.SERVICES }).toEqual({ name, SERVICES: groups });
			expect(e.TRANSPORTER).toBe(`nats://${env.NATS_USER}:${env.NATS_PASSWORD}@nats:4222`);
			expect(e.MONGO_URI).toBe(
				`mongodb://${env.MONGO_APP_USER}:${env.MONGO_APP_PASSWORD}@mongodb:27017/flashmart?authSource=flashmart&replicaSet=rs0`
			);
			expect(e.MONGO_URI).not.toContain(env.MONGO_ROOT_PASSWORD);
			expect(e.CACHER).toBe(`redis://:${env.REDIS_PASSWORD}@redis:6379`);
			expect(e.METRICS_PORT).toBe("3030");
			expect(e.ELASTICSEARCH_URL).toBe("http://elasticsearch:9200");
		}
		expect(images.size).toBe(1);
		expect(environmentOf(project.services.users).JWT_PRIVATE_KEY).toBe(env.JWT_PRIVATE_KEY);
		expect(environmentOf(project.services.gateway).JWT_PUBLIC_KEY).toBe(env.JWT_PUBLIC_KEY);
		expect(environmentOf(project.services.gateway).JWT_PRIVATE_KEY).toBeUndefined();
		expect(environmentOf(project.services.catalog).MINIO_ACCESS_KEY).toBe(env.MINIO_APP_ACCESS_KEY);
	});

	it("give every node an environment FlashMart's own config accepts, running the services of its group", () => {
		// Realistic values where the config checks the form: PEM keys, an email address.
		const keys = makeKeyPair();
		const env = {
			...operatorEnv(),
			JWT_PRIVATE_KEY: keys.privateKey.replace(/\n/g, "\\n"),
			JWT_PUBLIC_KEY: keys.publicKey.replace(/\n/g, "\\n"),
			ADMIN_EMAIL: "admin@example.com",
			ADMIN_PASSWORD: "a-long-admin-password",
			TRUSTED_PROXIES: "10.0.0.0/8",
			TRACING_TRUSTED_CLIENTS: "10.0.0.0/8",
			TRACING_ENABLED: "",
			TRACING_SAMPLE_RATIO: ""
		};
		const real = composeProject(env);
		for (const [name, groups] of Object.entries(APP_NODES)) {
			const cfg = loadConfig(environmentOf(real.services[name]));
			expect({ name, mode: cfg.mode, services: cfg.services }).toEqual({
				name,
				mode: "cluster",
				services: groups.split(",")
			});
			expect(cfg.mongoUri).toMatch(/^mongodb:\/\/test-mongo_app_user:/);
			expect(cfg.cacher.type).toBe("redis");
			expect(cfg.metrics).toEqual({ enabled: true, port: 3030 });
			expect(cfg.log.format).toBe("json");
			// Traced by default, to the stack's Jaeger (docs/tracing.md).
			expect(cfg.tracing).toMatchObject({
				sampleRatio: 0.1,
				exporter: { url: "http://jaeger:4318/v1/traces" }
			});
		}
		const catalog = loadConfig(environmentOf(real.services.catalog));
		expect(catalog.objectStore).toMatchObject({
			endpoint: "minio",
			port: 9000,
			bucket: "ecommerce"
		});
		expect(loadConfig(environmentOf(real.services.gateway)).gateway.port).toBe(5921);
		expect(loadConfig(environmentOf(real.services.users)).auth.adminEmail).toBe(
			"admin@example.com"
		);
	});

	it("scale: no container names, no fixed host port except the gateway's (a range when scaled)", () => {
		for (const name of Object.keys(APP_NODES)) {
			const s = project.services[name];
			expect(s.container_name).toBeUndefined();
			if (name !== "gateway") expect({ name, ports: s.ports ?? [] }).toEqual({ name, ports: [] });
		}
		expect(project.services.gateway.ports).toEqual(["0.0.0.0:5921:5921"]);
		const scaled = composeProject({ ...operatorEnv(), GATEWAY_PUBLISH_PORTS: "5921-5924" });
		expect(scaled.services.gateway.ports).toEqual(["0.0.0.0:5921-5924:5921"]);
	});

	it("give a stopping node more time than its shutdown timeout", () => {
		for (const name of Object.keys(APP_NODES)) {
			const s = project.services[name];
			const shutdownMs = Number(environmentOf(s).SHUTDOWN_TIMEOUT);
			expect(shutdownMs).toBeGreaterThan(0);
			expect(seconds(s.stop_grace_period ?? "10s")).toBeGreaterThan(shutdownMs / 1000 + 5);
		}
	});

	it("build from docker/Dockerfile, whose start command is npm start", () => {
		const s = project.services.gateway;
		const build = s.build as { context: string; dockerfile: string };
		const dockerfile = path.resolve(s.$dir, build.context, build.dockerfile);
		expect(fs.existsSync(dockerfile)).toBe(true);
		const cmd = fs.readFileSync(dockerfile, "utf8").match(/^CMD (.*)$/m)?.[1];
		expect(cmd).toBe('["npm", "start"]');
		const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
		expect(pkg.scripts.start).toBe(
			"MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} exec node dist/server.js"
		);
	});
});

describe("monitoring as mounted", () => {
	const promDir = path.join(ROOT, "monitoring", "prometheus");
	const prometheusYml = (): {
		scrape_configs?: Array<{
			job_name: string;
			static_configs?: Array<{ targets: string[] }>;
			dns_sd_configs?: Array<{ names: string[]; port: number; type?: string }>;
		}>;
		alerting?: { alertmanagers?: Array<{ static_configs?: Array<{ targets: string[] }> }> };
		rule_files?: string[];
	} => load(fs.readFileSync(path.join(promDir, "prometheus.yml"), "utf8")) as never;

	/** Whether a service of the stack listens on host:port (localhost: the container itself, `self`). */
	const exists = ({ host, port }: { host: string; port: number }, self?: string): string | null => {
		if (self && (host === "localhost" || host === "127.0.0.1")) host = self;
		const s = project.services[host];
		if (!s) return `${host}:${port}: no such compose service`;
		if (!containerPorts(s).has(port)) return `${host}:${port}: ${host} does not expose ${port}`;
		return null;
	};

	it("every Prometheus scrape target names a service and a port of the stack", () => {
		const problems: string[] = [];
		let targets = 0;
		for (const job of prometheusYml().scrape_configs ?? []) {
			for (const sc of job.static_configs ?? []) {
				for (const t of sc.targets) {
					targets++;
					const p = exists(hostPort(t), "prometheus");
					if (p) problems.push(`${job.job_name}: ${p}`);
				}
			}
			for (const dns of job.dns_sd_configs ?? []) {
				for (const n of dns.names) {
					targets++;
					const p = exists({ host: n, port: Number(dns.port) });
					if (p) problems.push(`${job.job_name}: ${p}`);
				}
			}
		}
		for (const am of prometheusYml().alerting?.alertmanagers ?? []) {
			for (const sc of am.static_configs ?? []) {
				for (const t of sc.targets) {
					const p = exists(hostPort(t));
					if (p) problems.push(`alerting: ${p}`);
				}
			}
		}
		expect(targets).toBeGreaterThan(0);
		expect(problems).toEqual([]);
	});

	it("Prometheus finds every replica of every application node by DNS on port 3030", () => {
		const dnsNames = (prometheusYml().scrape_configs ?? []).flatMap(j =>
			(j.dns_sd_configs ?? [])
				.filter(d => Number(d.port) === 3030 && (d.type ?? "SRV") === "A")
				.flatMap(d => d.names)
		);
		expect(Object.keys(APP_NODES).filter(n => !dnsNames.includes(n))).toEqual([]);
	});

	it("every Grafana datasource URL names a service and a port of the stack", () => {
		const dir = path.join(ROOT, "monitoring", "grafana", "provisioning", "datasources");
		const problems: string[] = [];
		let urls = 0;
		for (const f of fs.readdirSync(dir).filter(f => /\.ya?ml$/.test(f))) {
			const doc = load(fs.readFileSync(path.join(dir, f), "utf8")) as {
				datasources?: Array<{ name: string; url?: string }>;
			};
			for (const ds of doc.datasources ?? []) {
				if (!ds.url) continue;
				urls++;
				const p = exists(hostPort(ds.url));
				if (p) problems.push(`${f} ${ds.name}: ${p}`);
			}
		}
		expect(urls).toBeGreaterThan(0);
		expect(problems).toEqual([]);
	});

	it("Jaeger takes OTLP from every node and stores in the stack's Elasticsearch as its own user", () => {
		const jaeger = load(
			fs.readFileSync(path.join(ROOT, "docker", "jaeger", "config.yaml"), "utf8")
		) as {
			receivers: { otlp: { protocols: { http: { endpoint: string } } } };
			extensions: {
				jaeger_storage: {
					backends: Record<
						string,
						{
							elasticsearch: {
								server_urls: string[];
								auth: { basic: { username: string; password: string } };
							};
						}
					>;
				};
			};
		};
		const [backend] = Object.values(jaeger.extensions.jaeger_storage.backends);
		for (const url of backend.elasticsearch.server_urls) expect(exists(hostPort(url))).toBeNull();
		expect(backend.elasticsearch.auth.basic).toEqual({
			username: "${env:ES_TRACES_USER}",
			password: "${env:ES_TRACES_PASSWORD}"
		});
		expect(environmentOf(project.services.jaeger)).toMatchObject({
			ES_TRACES_USER: "test-es_traces_user",
			ES_TRACES_PASSWORD: "test-es_traces_password"
		});
		const otlpPort = Number(jaeger.receivers.otlp.protocols.http.endpoint.split(":").pop());
		for (const name of Object.keys(APP_NODES)) {
			const endpoint = environmentOf(project.services[name]).OTEL_EXPORTER_OTLP_ENDPOINT;
			expect({ name, problem: exists(hostPort(endpoint)) }).toEqual({ name, problem: null });
			expect(hostPort(endpoint).port).toBe(otlpPort);
		}
	});

	it("every file mounted into a container exists, and so does every path a command names inside a mount", () => {
		const problems: string[] = [];
		let mounts = 0;
		for (const [name, s] of services()) {
			for (const m of bindMounts(s)) {
				// Host paths of the machine (/, /sys, /var/run ...) belong to the exporters, not to this repository.
				if (!m.host.startsWith(ROOT)) continue;
				mounts++;
				if (!fs.existsSync(m.host))
					problems.push(`${name}: ${path.relative(ROOT, m.host)} is missing`);
			}
			const args = [s.entrypoint ?? [], s.command ?? []].flat().flatMap(a => String(a).split("="));
			for (const a of args.filter(a => a.startsWith("/"))) {
				const host = hostPathOf(s, a);
				// Paths on the Docker host (node-exporter's /host, the textfile directory) are not this repository's.
				if (host && host.startsWith(ROOT) && !fs.existsSync(host))
					problems.push(`${name}: ${a} (${path.relative(ROOT, host)}) is missing`);
			}
			const build = s.build;
			if (build && typeof build === "object") {
				const ctx = path.resolve(s.$dir, build.context ?? ".");
				if (!fs.existsSync(path.join(ctx, build.dockerfile ?? "Dockerfile")))
					problems.push(`${name}: Dockerfile missing`);
			}
		}
		expect(mounts).toBeGreaterThanOrEqual(9);
		expect(problems).toEqual([]);
	});

	it("every rule file Prometheus loads exists under monitoring/prometheus", () => {
		const prometheus = project.services.prometheus;
		const problems: string[] = [];
		for (const pattern of prometheusYml().rule_files ?? []) {
			const inContainer = path.posix.resolve("/etc/prometheus", pattern);
			const host = hostPathOf(prometheus, path.posix.dirname(inContainer));
			const base = path.posix.basename(inContainer);
			const re = new RegExp(
				`^${base
					.replace(/[.+^${}()|[\]\\]/g, "\\$&")
					.replace(/\*/g, ".*")
					.replace(/\?/g, ".")}$`
			);
			const found = host && fs.existsSync(host) ? fs.readdirSync(host).filter(f => re.test(f)) : [];
			if (found.length === 0) problems.push(`${pattern}: no file`);
		}
		expect(problems).toEqual([]);
	});
});

/** Bytes of a compose memory size ("512M", "1.5g", "2G"). */
function bytes(size: string | number): number {
	const m = String(size).match(/^(\d+(?:\.\d+)?)\s*([bkmg]?)i?b?$/i);
	if (!m) throw new Error(`not a size: ${size}`);
	return (
		Number(m[1]) * { "": 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2].toLowerCase() as "m"]
	);
}
type Resources = { cpus?: string | number; memory?: string };
const resourcesOf = (s: ComposeService): { limits?: Resources; reservations?: Resources } =>
	((s.deploy as { resources?: object } | undefined)?.resources ?? {}) as never;

describe("resource limits", () => {
	it("give every service a CPU and a memory limit, and a memory reservation under it", () => {
		const problems: string[] = [];
		for (const [name, s] of services()) {
			const { limits, reservations } = resourcesOf(s);
			if (!limits?.cpus || !(Number(limits.cpus) > 0)) problems.push(`${name}: no CPU limit`);
			if (!limits?.memory) problems.push(`${name}: no memory limit`);
			else if (!reservations?.memory) problems.push(`${name}: no memory reservation`);
			else if (bytes(reservations.memory) > bytes(limits.memory))
				problems.push(`${name}: reservation above the limit`);
		}
		expect(problems).toEqual([]);
	});

	it("size each app node's V8 heap at 3/4 of its container's memory limit", () => {
		for (const name of Object.keys(APP_NODES)) {
			const s = project.services[name];
			const heap = environmentOf(s).NODE_OPTIONS?.match(/--max-old-space-size=(\d+)/)?.[1];
			expect({ name, heap: heap !== undefined }).toEqual({ name, heap: true });
			const limitMb = bytes(resourcesOf(s).limits!.memory!) / 2 ** 20;
			expect({ name, ratio: Number(heap) / limitMb }).toEqual({ name, ratio: 0.75 });
		}
	});

	it("give Elasticsearch at least twice its JVM heap, and Redis a maxmemory under its limit", () => {
		const es = project.services.elasticsearch;
		const heap = environmentOf(es).ES_JAVA_OPTS.match(/-Xmx(\S+)/)![1];
		expect(bytes(resourcesOf(es).limits!.memory!)).toBeGreaterThanOrEqual(2 * bytes(heap));
		const redisCmd = [project.services.redis.command].flat().join(" ");
		const maxmemory = redisCmd.match(/--maxmemory (\S+)/)![1];
		expect(bytes(maxmemory)).toBeLessThan(
			bytes(resourcesOf(project.services.redis).limits!.memory!)
		);
		const mongoCache = [project.services.mongodb.command].flat().join(" ");
		expect(Number(mongoCache.match(/--wiredTigerCacheSizeGB (\S+)/)![1]) * 2 ** 30).toBeLessThan(
			bytes(resourcesOf(project.services.mongodb).limits!.memory!) / 2
		);
	});
});

/**
 * What each image of the stack has to run a healthcheck with, and how that is known. A healthcheck's command must be
 * one of these; CMD-SHELL needs `sh`. A new image must be added here (the test fails on an unknown one).
 */
const IMAGE_TOOLS: Record<string, { tools: string[]; source: string }> = {
	"node:22-bookworm-slim": {
		tools: ["sh", "node"],
		source: "Debian slim: dash and node; no curl or wget (the official image's Dockerfile)"
	},
	"mongo:5.0": {
		tools: ["sh", "bash", "mongo", "mongodump", "mongorestore"],
		source:
			"Ubuntu focal with mongodb-org-shell and the database tools (docker-library/mongo 5.0 Dockerfile)"
	},
	"nats:2.10-alpine": { tools: ["sh", "wget"], source: "Alpine: busybox sh and wget" },
	"redis:7-alpine": { tools: ["sh", "wget", "redis-cli"], source: "Alpine: busybox, redis-cli" },
	"minio/minio:RELEASE.2024-12-18T13-15-44Z": {
		tools: ["sh", "mc"],
		source: "UBI micro with mc since 2023 (MinIO's docs use `mc ready local`); curl was removed"
	},
	"minio/mc:RELEASE.2024-11-21T17-21-54Z": { tools: ["sh", "mc"], source: "UBI micro with mc" },
	"docker.elastic.co/elasticsearch/elasticsearch:8.19.0": {
		tools: ["sh", "bash", "curl"],
		source: "Ubuntu base; Elastic's own compose example healthchecks with curl in CMD-SHELL"
	},
	"docker.elastic.co/kibana/kibana:8.19.0": {
		tools: ["sh", "bash", "curl"],
		source: "Ubuntu base; Elastic's own compose example healthchecks with curl in CMD-SHELL"
	},
	"prom/prometheus:v2.55.1": { tools: ["sh", "wget"], source: "quay.io/prometheus/busybox base" },
	"prom/alertmanager:v0.27.0": { tools: ["sh", "wget"], source: "quay.io/prometheus/busybox base" },
	"prom/node-exporter:v1.8.2": { tools: ["sh", "wget"], source: "quay.io/prometheus/busybox base" },
	"grafana/grafana:11.3.0": { tools: ["sh", "wget"], source: "Alpine base: busybox" },
	"jaegertracing/jaeger:2.5.0": {
		tools: ["sh", "wget"],
		source: "Alpine base with ca-certificates (jaeger's scripts/build/docker/base/Dockerfile)"
	},
	"gcr.io/cadvisor/cadvisor:v0.49.1": {
		tools: ["sh", "wget"],
		source: "Alpine base; its Dockerfile's own HEALTHCHECK uses wget"
	},
	"quay.io/prometheuscommunity/elasticsearch-exporter:v1.8.0": {
		tools: ["sh", "wget"],
		source: "quay.io/prometheus/busybox base (prometheus-community Dockerfile)"
	},
	"oliver006/redis_exporter:v1.66.0-alpine": {
		tools: ["sh", "wget"],
		source: "the -alpine variant (the default tag is FROM scratch)"
	},
	"busybox:1.36": { tools: ["sh", "wget"], source: "busybox" },
	// FROM scratch: a binary and nothing else. Only usable rebuilt on busybox (docker/*-exporter/Dockerfile).
	"percona/mongodb_exporter:0.40": {
		tools: [],
		source: "FROM scratch (percona/mongodb_exporter Dockerfile)"
	},
	"natsio/prometheus-nats-exporter:0.15.0": { tools: [], source: "FROM scratch" },
	"oliver006/redis_exporter:v1.66.0": { tools: [], source: "FROM scratch" }
};

/** The image a service runs: for a built one, the last FROM of its Dockerfile (the runtime stage). */
function baseImage(s: ComposeService & { $dir: string }): string {
	if (s.build) {
		const b = typeof s.build === "string" ? { context: s.build } : s.build;
		const file = path.resolve(s.$dir, b.context ?? ".", b.dockerfile ?? "Dockerfile");
		const froms = [...fs.readFileSync(file, "utf8").matchAll(/^FROM\s+(\S+)/gm)].map(m => m[1]);
		return froms[froms.length - 1];
	}
	return s.image!;
}

describe("healthchecks against what each image contains", () => {
	it("know every image of the stack", () => {
		const unknown = services()
			.map(([name, s]) => [name, baseImage(s)])
			.filter(([, image]) => !(image in IMAGE_TOOLS));
		expect(unknown).toEqual([]);
	});

	it("never use CMD-SHELL on an image without a shell, nor a command the image lacks", () => {
		const problems: string[] = [];
		for (const [name, s] of services()) {
			const test = s.healthcheck?.test;
			if (!Array.isArray(test) || test[0] === "NONE") continue;
			const { tools } = IMAGE_TOOLS[baseImage(s)] ?? { tools: [] };
			const command = test[0] === "CMD-SHELL" ? String(test[1]).trim().split(/\s+/)[0] : test[1];
			if (test[0] === "CMD-SHELL" && !tools.includes("sh"))
				problems.push(`${name}: CMD-SHELL on ${baseImage(s)}, which has no shell`);
			if (!tools.includes(command)) problems.push(`${name}: ${command} is not in ${baseImage(s)}`);
		}
		expect(problems).toEqual([]);
	});

	it("would catch the old mongodb-exporter healthcheck (wget on a FROM scratch image)", () => {
		expect(IMAGE_TOOLS["percona/mongodb_exporter:0.40"].tools).not.toContain("wget");
		expect(baseImage(project.services["mongodb-exporter"])).toBe("busybox:1.36");
	});

	it("check each backend node's own /ready on METRICS_PORT, with node (the image has no curl or wget)", () => {
		for (const name of Object.keys(APP_NODES).filter(n => n !== "gateway")) {
			const test = project.services[name].healthcheck!.test as string[];
			expect(test.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
			expect(test[3]).toContain("'http://127.0.0.1:'+(process.env.METRICS_PORT||3030)+'/ready'");
		}
		expect(loadConfig({}).metrics.port).toBe(3030);
	});
});

describe("networks and published ports", () => {
	const DATA_STORES = ["mongodb", "nats", "redis", "minio", "elasticsearch"];
	const UIS: Record<string, number> = {
		kibana: 5601,
		prometheus: 9090,
		alertmanager: 9093,
		grafana: 3000
	};

	it("keep data stores and exporters on the backend network only, publishing nothing", () => {
		for (const [name, s] of services()) {
			if (!(DATA_STORES.includes(name) || /exporter|cadvisor/.test(name))) continue;
			expect({ name, networks: s.networks, ports: s.ports ?? [] }).toEqual({
				name,
				networks: ["backend"],
				ports: []
			});
		}
	});

	it("publish only the gateway and the operators' UIs", () => {
		const published = Object.fromEntries(
			services()
				.filter(([, s]) => (s.ports ?? []).length > 0)
				.map(([name, s]) => [name, (s.ports ?? []).map(p => Number(String(p).split(":").pop()))])
		);
		expect(published).toEqual({
			gateway: [5921],
			...Object.fromEntries(Object.entries(UIS).map(([n, p]) => [n, [p]]))
		});
	});
});

describe("MongoDB as a replica set, backups and retention", () => {
	it("runs a single-node replica set with a keyFile, initiated by a job the nodes wait for", () => {
		const cmd = [project.services.mongodb.command].flat().join(" ");
		expect(cmd).toContain("--replSet rs0");
		expect(cmd).toContain("--keyFile /etc/flashmart-mongo/keyfile");
		expect(dependsOn(project.services.mongodb)["mongodb-keyfile"]).toBe(
			"service_completed_successfully"
		);
		for (const name of Object.keys(APP_NODES))
			expect(dependsOn(project.services[name])["mongodb-setup"]).toBe(
				"service_completed_successfully"
			);
		const script = fs.readFileSync(path.join(ROOT, "docker", "mongodb", "replica-set.sh"), "utf8");
		expect(script).toMatch(
			/rs\.initiate\(\{ _id: "rs0", members: \[\{ _id: 0, host: "mongodb:27017" \}\] \}\)/
		);
		// No password on a command line in the MongoDB scripts: they log in with db.auth inside the script.
		for (const f of ["init-users.sh", "replica-set.sh"]) {
			const text = fs.readFileSync(path.join(ROOT, "docker", "mongodb", f), "utf8");
			expect({ f, password: /--password|\s-p\s/.test(text) }).toEqual({ f, password: false });
		}
	});

	it("mounts node-exporter's textfile directory for the backup metrics", () => {
		const ne = project.services["node-exporter"];
		expect([ne.command].flat()).toContain("--collector.textfile.directory=/textfile");
		expect(bindMounts(ne).map(m => m.container)).toContain("/textfile");
	});

	it("keeps Prometheus' history longer than the 30-day error-budget panel", () => {
		const arg = [project.services.prometheus.command]
			.flat()
			.find(a => String(a).startsWith("--storage.tsdb.retention.time="));
		const days = Number(String(arg).match(/=(\d+)d$/)?.[1]);
		expect(days).toBeGreaterThanOrEqual(30);
	});

	it("creates only the buckets the application uses", () => {
		expect(environmentOf(project.services["minio-setup"]).MINIO_BUCKETS).toBe("ecommerce backups");
		const policy = fs.readFileSync(
			path.join(ROOT, "docker", "minio", "flashmart-policy.json"),
			"utf8"
		);
		expect(policy).not.toContain(":::logs");
	});
});

describe("elasticsearch-setup", () => {
	const dir = path.join(ROOT, "docker", "elasticsearch");
	const script = fs.readFileSync(path.join(dir, "setup.sh"), "utf8");
	/** The index privileges a role of setup.sh grants on logs-flashmart-*. */
	const privileges = (role: string): string[] => {
		const body = script.match(new RegExp(`/_security/role/${role} '([^']*)'`))?.[1];
		return JSON.parse(body!).indices.flatMap((i: { privileges: string[] }) => i.privileges);
	};

	it("lets the shipper append to logs-flashmart-* and nothing else; Grafana's reader only read them", () => {
		expect(privileges("flashmart_logs_writer").sort()).toEqual(["auto_configure", "create_doc"]);
		expect(privileges("flashmart_logs_reader").sort()).toEqual(["read", "view_index_metadata"]);
		expect(script).toMatch(/\/_security\/user\/\$ES_LOGS_USER".*flashmart_logs_writer/);
		expect(script).toMatch(/\/_security\/user\/\$ES_LOGS_READER_USER".*flashmart_logs_reader/);
	});

	it("installs the shipper's template as elastic, with the ILM policy that deletes old daily indices", () => {
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const {
			LOG_INDEX_TEMPLATE,
			LOG_TEMPLATE_NAME
		} = require("../../../adapters/logging/log-shipper");
		const template = JSON.parse(fs.readFileSync(path.join(dir, "logs-template.json"), "utf8"));
		expect(template.index_patterns).toEqual(LOG_INDEX_TEMPLATE.index_patterns);
		expect(template.priority).toBe(LOG_INDEX_TEMPLATE.priority);
		expect(template.template.mappings).toEqual(LOG_INDEX_TEMPLATE.template.mappings);
		expect(template.template.settings["index.lifecycle.name"]).toBe("flashmart-logs");
		expect(script).toContain(`/_index_template/${LOG_TEMPLATE_NAME} "@$here/logs-template.json"`);
		expect(script).toMatch(/\/_ilm\/policy\/flashmart-logs/);
		expect(script).toMatch(
			/"delete": \{\\"min_age\\": \\"\$\{retention\}d\\"|\\"delete\\": \{\\"min_age\\": \\"\$\{retention\}d\\"/
		);
		expect(project.services["elasticsearch-setup"].environment).toMatchObject({
			ES_LOGS_RETENTION_DAYS: "30"
		});
	});
});
