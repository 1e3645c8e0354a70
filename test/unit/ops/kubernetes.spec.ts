/**
 * deploy/kubernetes, rendered by a real kustomize (kubectl's) for each overlay: every object valid against the
 * Kubernetes and Prometheus Operator schemas, strictly (no field they do not define) and with no deprecated or
 * pre-release API version, and the policies operators rely on
 * (probes, resources, pinned images, pod security, disruption budgets, autoscalers, documented Secrets, network
 * policies over every pod and port, the shutdown budget, the environment config/ accepts, compose's figures).
 */
import { ENV_VARIABLES, loadConfig } from "../../../config";
import {
	type K8sObject,
	OVERLAYS,
	containerEnv,
	documentedSecrets,
	find,
	render,
	testSecrets
} from "../../../scripts/lib/kubernetes";
import { composeProject, envExample } from "../../helpers/compose";
import { validateStrictly } from "../../helpers/kubernetes-schema";

const WORKLOADS = ["Deployment", "StatefulSet", "Job"];
const APP_GROUPS = ["gateway", "users", "catalog", "commerce", "payments"];
/** A release tag (1.2.3, v1.2.3, 5.0.31, RELEASE.2024-12-18T13-15-44Z, with a -suffix) or a digest. */
const PINNED =
	/(:(v?\d+\.\d+\.\d+|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)(-[a-z0-9.]+)?(@sha256:[a-f0-9]{64})?|@sha256:[a-f0-9]{64})$/;

const rendered = new Map<string, K8sObject[]>(OVERLAYS.map(o => [o, render(o)]));
const podSpec = (o: K8sObject) => o.spec.template.spec;
const podLabels = (o: K8sObject): Record<string, string> => o.spec.template.metadata?.labels ?? {};
const workloads = (objs: K8sObject[]) => objs.filter(o => WORKLOADS.includes(o.kind));
const matches = (
	selector: { matchLabels?: Record<string, string> },
	labels: Record<string, string>
) => Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
const replicasOf = (objs: K8sObject[], w: K8sObject): number => {
	const hpa = objs.find(
		o => o.kind === "HorizontalPodAutoscaler" && o.spec.scaleTargetRef.name === w.metadata.name
	);
	return hpa ? hpa.spec.minReplicas : (w.spec.replicas ?? 1);
};

describe.each(OVERLAYS)("deploy/kubernetes/overlays/%s", overlay => {
	const objs = rendered.get(overlay)!;

	it("renders the five node groups, NATS, MongoDB, Redis and MinIO", () => {
		for (const g of APP_GROUPS) expect(find(objs, "Deployment", g)).toBeDefined();
		expect(find(objs, "StatefulSet", "nats")?.spec.replicas).toBe(3);
		expect(find(objs, "StatefulSet", "mongodb")?.spec.replicas).toBe(3);
		expect(find(objs, "Deployment", "redis")).toBeDefined();
		expect(find(objs, "StatefulSet", "minio")).toBeDefined();
		expect(new Set(objs.map(o => o.metadata.namespace))).toEqual(
			new Set([`flashmart${overlay === "dev" ? "-dev" : ""}`])
		);
	});

	it("validates strictly against the Kubernetes and Prometheus Operator schemas, all on stable API versions", () => {
		// freeForm empty: no value of any object falls in a part of a schema that leaves its fields open.
		expect(validateStrictly(objs)).toEqual({ objects: objs.length, errors: [], freeForm: [] });
	});

	it("gives every container a pinned image and a non-root, read-only, unprivileged security context", () => {
		for (const w of workloads(objs)) {
			const spec = podSpec(w);
			for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
				const where = `${w.kind}/${w.metadata.name}/${c.name}`;
				expect([where, c.image]).toEqual([where, expect.stringMatching(PINNED)]);
				expect([
					where,
					c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot
				]).toEqual([where, true]);
				expect([where, c.securityContext]).toMatchObject([
					where,
					{
						allowPrivilegeEscalation: false,
						readOnlyRootFilesystem: true,
						capabilities: { drop: ["ALL"] }
					}
				]);
				expect([where, c.securityContext.privileged ?? false]).toEqual([where, false]);
				// Requests and limits on everything, Jobs and init containers included (the scheduler needs them).
				for (const kind of ["requests", "limits"])
					expect([where, kind, Object.keys(c.resources?.[kind] ?? {}).sort()]).toEqual([
						where,
						kind,
						["cpu", "memory"]
					]);
			}
			expect([w.metadata.name, spec.automountServiceAccountToken]).toEqual([
				w.metadata.name,
				false
			]);
		}
	});

	it("gives every long-running container startup, liveness and readiness probes on a port it declares", () => {
		for (const w of objs.filter(o => o.kind === "Deployment" || o.kind === "StatefulSet")) {
			for (const c of podSpec(w).containers) {
				const where = `${w.metadata.name}/${c.name}`;
				const ports = (c.ports ?? []).map((p: { name: string }) => p.name);
				for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
					expect([where, probe, !!c[probe]]).toEqual([where, probe, true]);
					// A named port must be one the container declares (a number may be one only the pod uses).
					const port = c[probe].httpGet?.port;
					if (typeof port === "string")
						expect([where, ports]).toEqual([where, expect.arrayContaining([port])]);
				}
			}
		}
	});

	it("probes the gateway's /live and /ready on GATEWAY_PORT and the backend nodes' on METRICS_PORT", () => {
		for (const g of APP_GROUPS) {
			const c = podSpec(find(objs, "Deployment", g)!).containers[0];
			const port = g === "gateway" ? "http" : "metrics";
			const env = containerEnv(objs, c, { podName: `${g}-0`, secrets: testSecrets() });
			const number = c.ports.find((p: { name: string }) => p.name === port).containerPort;
			expect(String(number)).toBe(g === "gateway" ? env.GATEWAY_PORT : env.METRICS_PORT);
			expect(c.livenessProbe.httpGet).toEqual({ path: "/live", port });
			expect(c.readinessProbe.httpGet).toEqual({ path: "/ready", port });
			expect(c.startupProbe.httpGet).toEqual({ path: "/live", port });
		}
	});

	it("gives a stopping node more time than preStop, SHUTDOWN_TIMEOUT and the 5 s log flush take", () => {
		for (const g of APP_GROUPS) {
			const w = find(objs, "Deployment", g)!;
			const c = podSpec(w).containers[0];
			const env = containerEnv(objs, c, { podName: `${g}-0`, secrets: testSecrets() });
			const needed =
				(c.lifecycle?.preStop?.sleep?.seconds ?? 0) + Number(env.SHUTDOWN_TIMEOUT) / 1000 + 5;
			expect([g, podSpec(w).terminationGracePeriodSeconds]).toEqual([g, expect.any(Number)]);
			expect(podSpec(w).terminationGracePeriodSeconds).toBeGreaterThan(needed);
			expect(w.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
		}
	});

	it("has a PodDisruptionBudget for every workload with more than one replica", () => {
		const pdbs = objs.filter(o => o.kind === "PodDisruptionBudget");
		for (const w of objs.filter(o => o.kind === "Deployment" || o.kind === "StatefulSet")) {
			const covering = pdbs.filter(p => matches(p.spec.selector, podLabels(w)));
			expect([w.metadata.name, covering.length]).toEqual([
				w.metadata.name,
				replicasOf(objs, w) > 1 ? 1 : 0
			]);
		}
		// A budget that selects nothing protects nothing.
		for (const p of pdbs)
			expect([
				p.metadata.name,
				workloads(objs).some(w => matches(p.spec.selector, podLabels(w)))
			]).toEqual([p.metadata.name, true]);
	});

	it("points every HorizontalPodAutoscaler at an existing Deployment, 2 to 10 pods at 70% CPU", () => {
		const hpas = objs.filter(o => o.kind === "HorizontalPodAutoscaler");
		expect(hpas.map(h => h.spec.scaleTargetRef.name).sort()).toEqual(
			overlay === "dev" ? [] : [...APP_GROUPS].sort()
		);
		for (const h of hpas) {
			expect(find(objs, h.spec.scaleTargetRef.kind, h.spec.scaleTargetRef.name)?.apiVersion).toBe(
				h.spec.scaleTargetRef.apiVersion
			);
			expect(h.spec).toMatchObject({
				minReplicas: 2,
				maxReplicas: 10,
				metrics: [
					{
						type: "Resource",
						resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } }
					}
				]
			});
		}
	});

	it("names only Secrets that docs/kubernetes.md creates, with the keys it reads", () => {
		const documented = documentedSecrets();
		const used: Array<[string, string | null]> = [];
		for (const w of workloads(objs)) {
			const spec = podSpec(w);
			for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
				for (const e of c.env ?? [])
					if (e.valueFrom?.secretKeyRef)
						used.push([e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]);
				for (const f of c.envFrom ?? []) if (f.secretRef) used.push([f.secretRef.name, null]);
			}
			for (const v of spec.volumes ?? [])
				if (v.secret) used.push([v.secret.secretName, v.secret.items ? null : "keyfile"]);
		}
		for (const i of objs.filter(o => o.kind === "Ingress"))
			for (const t of i.spec.tls ?? []) used.push([t.secretName, null]);
		expect(used.length).toBeGreaterThan(10);
		for (const [name, key] of used) {
			expect([name, documented.has(name)]).toEqual([name, true]);
			if (key) expect([name, documented.get(name)]).toEqual([name, expect.stringContaining(key)]);
		}
		// And no Secret object is ever rendered: they are created by hand, never committed.
		expect(objs.filter(o => o.kind === "Secret")).toEqual([]);
	});

	it("covers every pod and every port with NetworkPolicies: only the gateway open to everyone", () => {
		const policies = objs.filter(o => o.kind === "NetworkPolicy");
		const selects = (p: K8sObject, w: K8sObject) => matches(p.spec.podSelector, podLabels(w));
		expect(
			policies.find(p => Object.keys(p.spec.podSelector).length === 0 && !p.spec.ingress)?.spec
				.policyTypes
		).toEqual(["Ingress"]);
		for (const w of workloads(objs)) {
			const mine = policies.filter(p => selects(p, w) && p.spec.ingress);
			for (const c of podSpec(w).containers) {
				for (const port of c.ports ?? []) {
					const rules = mine
						.flatMap(p => p.spec.ingress)
						.filter((r: any) => r.ports.some((rp: any) => rp.port === port.name));
					expect([w.metadata.name, port.name, rules.length > 0]).toEqual([
						w.metadata.name,
						port.name,
						true
					]);
					const open = rules.some((r: any) => !r.from);
					expect([w.metadata.name, port.name, open]).toEqual([
						w.metadata.name,
						port.name,
						w.metadata.name === "gateway" && port.name === "http"
					]);
				}
			}
		}
		// Metrics ports take only Prometheus; the data tier only FlashMart's pods, its own members and setup jobs.
		for (const p of policies) {
			for (const r of p.spec.ingress ?? []) {
				if (r.ports.some((rp: any) => rp.port === "metrics"))
					expect(r.from).toEqual([
						{
							namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
							podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } }
						}
					]);
			}
		}
		for (const name of ["nats", "mongodb", "redis", "minio"]) {
			const w = workloads(objs).find(o => o.metadata.name === name)!;
			const peers = policies
				.filter(p => selects(p, w))
				.flatMap(p => p.spec.ingress ?? [])
				.flatMap((r: any) => r.from ?? []);
			for (const peer of peers) {
				const label = peer.podSelector?.matchLabels ?? {};
				const allowed =
					label["flashmart.io/tier"] === "app" ||
					[name, `${name}-setup`, "prometheus"].includes(label["app.kubernetes.io/name"]);
				expect([name, peer, allowed]).toEqual([name, peer, true]);
			}
		}
	});

	it("puts only variables config/index.ts reads in the ConfigMaps and environments it accepts on every node", () => {
		const secrets = testSecrets();
		for (const cm of objs.filter(
			o =>
				o.kind === "ConfigMap" &&
				/^flashmart-(common|gateway|users|catalog|commerce|payments)-/.test(o.metadata.name)
		))
			for (const k of Object.keys(cm.data))
				expect([cm.metadata.name, ENV_VARIABLES.includes(k)]).toEqual([cm.metadata.name, true]);
		for (const g of APP_GROUPS) {
			const c = podSpec(find(objs, "Deployment", g)!).containers[0];
			const env = containerEnv(objs, c, { podName: `${g}-abc12`, secrets });
			// Set directly: config variables, NODE_OPTIONS, and the Secret values the URLs are made of.
			const parts = (c.env as Array<{ name: string; value?: string }>).flatMap(e =>
				[...(e.value ?? "").matchAll(/\$\(([A-Z_]+)\)/g)].map(m => m[1])
			);
			for (const e of c.env)
				expect([
					g,
					e.name,
					ENV_VARIABLES.includes(e.name) || e.name === "NODE_OPTIONS" || parts.includes(e.name)
				]).toEqual([g, e.name, true]);
			const cfg = loadConfig(env);
			expect(cfg.mode).toBe("cluster");
			expect(cfg.mongoUri).toMatch(/replicaSet=rs0/);
			expect(cfg.cacher.type).toBe("redis");
			expect(cfg.nodeID).toBe(`${g}-abc12`);
		}
	});

	it("keeps docker-compose.yaml's services, limits, reservations and heap for each group", () => {
		const compose = composeProject(
			Object.fromEntries([...envExample()].map(([k, v]) => [k, v || `test-${k.toLowerCase()}`]))
		);
		const cpu = (v: string) => (v.endsWith("m") ? Number(v.slice(0, -1)) / 1000 : Number(v));
		const mib = (v: string) => Number(/^(\d+)(Mi|M|G|Gi)$/.exec(v)![1]) * (/G/.test(v) ? 1024 : 1);
		for (const g of APP_GROUPS) {
			const c = podSpec(find(objs, "Deployment", g)!).containers[0];
			const env = containerEnv(objs, c, { podName: g, secrets: testSecrets() });
			const svc = compose.services[g] as any;
			expect(env.SERVICES).toBe(svc.environment.SERVICES);
			expect(env.NODE_OPTIONS).toBe(svc.environment.NODE_OPTIONS);
			const { limits, reservations } = svc.deploy.resources;
			expect([g, cpu(c.resources.limits.cpu), mib(c.resources.limits.memory)]).toEqual([
				g,
				Number(limits.cpus),
				mib(limits.memory)
			]);
			expect([g, cpu(c.resources.requests.cpu), mib(c.resources.requests.memory)]).toEqual([
				g,
				Number(reservations.cpus),
				mib(reservations.memory)
			]);
			expect(Number(/--max-old-space-size=(\d+)/.exec(env.NODE_OPTIONS)![1])).toBe(
				(mib(c.resources.limits.memory) * 3) / 4
			);
		}
	});
});

describe("the schema validation of rendered objects", () => {
	const objs = rendered.get("prod")!;
	const copy = (kind: string, name: string): K8sObject => structuredClone(find(objs, kind, name)!);
	const errorsOf = (...objects: K8sObject[]) => validateStrictly(objects).errors;

	it("rejects one misspelled field of a Deployment, naming the object and the field's JSON path", () => {
		const d = copy("Deployment", "gateway");
		const c = podSpec(d).containers[0];
		c.livenesProbe = c.livenessProbe;
		delete c.livenessProbe;
		expect(errorsOf(d)).toEqual([
			'Deployment/gateway: unknown field "spec.template.spec.containers[0].livenesProbe"'
		]);
	});

	it("rejects a field no schema defines in every kind rendered, in its metadata and its spec", () => {
		const kinds = [...new Set(objs.map(o => o.kind))];
		expect(kinds.length).toBeGreaterThan(10);
		const broken = kinds.map(kind => {
			const o = structuredClone(objs.find(x => x.kind === kind)!);
			Object.assign(o.metadata, { nmae: o.metadata.name });
			if (o.spec) o.spec.replicaCount = 1;
			return o;
		});
		const expected = broken.flatMap(o => [
			`${o.kind}/${o.metadata.name}: unknown field "metadata.nmae"`,
			...(o.spec ? [`${o.kind}/${o.metadata.name}: unknown field "spec.replicaCount"`] : [])
		]);
		expect(errorsOf(...broken).sort()).toEqual(expected.sort());
	});

	it("rejects a misspelled field at any depth, in the Prometheus Operator's kinds too", () => {
		const d = copy("Deployment", "users");
		podSpec(d).volumes[0].emptyDir.sizelimit = "1Gi";
		d.spce = {};
		const cm = copy("ConfigMap", "flashmart-grafana-dashboards");
		cm.datas = {};
		const policy = objs.find(o => o.kind === "NetworkPolicy" && o.spec.ingress)!;
		const peer = structuredClone(policy);
		peer.spec.ingress[0].form = [];
		const monitor = structuredClone(objs.find(o => o.kind === "PodMonitor")!);
		monitor.spec.podMetricsEndpoints[0].intervall = "15s";
		const rule = structuredClone(objs.find(o => o.kind === "PrometheusRule")!);
		rule.spec.groups[0].rules[0].expresion = "up";
		expect(errorsOf(d, cm, peer, monitor, rule).sort()).toEqual(
			[
				'Deployment/users: unknown field "spec.template.spec.volumes[0].emptyDir.sizelimit"',
				'Deployment/users: unknown field "spce"',
				'ConfigMap/flashmart-grafana-dashboards: unknown field "datas"',
				`NetworkPolicy/${peer.metadata.name}: unknown field "spec.ingress[0].form"`,
				`PodMonitor/${monitor.metadata.name}: unknown field "spec.podMetricsEndpoints[0].intervall"`,
				`PrometheusRule/${rule.metadata.name}: unknown field "spec.groups[0].rules[0].expresion"`
			].sort()
		);
	});

	it("leaves open only what Kubernetes keeps as maps: labels, annotations, data, resource names", () => {
		const d = copy("Deployment", "catalog");
		Object.assign(d.metadata, { annotations: { "example.com/any-thing": "x" } });
		d.spec.template.metadata.labels["example.com/team"] = "shop";
		podSpec(d).containers[0].resources.limits["example.com/gpu"] = "1";
		const cm = copy("ConfigMap", "flashmart-grafana-dashboards");
		cm.data["any-name.json"] = "{}";
		expect(validateStrictly([d, cm])).toEqual({ objects: 2, errors: [], freeForm: [] });
	});

	it("rejects deprecated and pre-release API versions, naming the one to use", () => {
		const pdb = { ...copy("PodDisruptionBudget", "gateway"), apiVersion: "policy/v1beta1" };
		const hpa = {
			...copy("HorizontalPodAutoscaler", "gateway"),
			apiVersion: "autoscaling/v2beta2"
		};
		// A kind that moved to another group: its old group has no newer version to point to.
		const ingress = { ...copy("Ingress", "gateway"), apiVersion: "extensions/v1beta1" };
		const errors = errorsOf(pdb, hpa, ingress);
		expect(errors).toEqual(
			expect.arrayContaining([
				"PodDisruptionBudget/gateway: policy/v1beta1 is superseded by policy/v1",
				"HorizontalPodAutoscaler/gateway: autoscaling/v2beta2 is superseded by autoscaling/v2",
				"Ingress/gateway: extensions/v1beta1 is a pre-release API version (deprecated, removed or off by default): Ingress is served as networking.k8s.io/v1"
			])
		);
		expect(
			errors.filter(e => /^(PodDisruptionBudget|HorizontalPodAutoscaler)\//.test(e))
		).toHaveLength(2);
	});
});
