/**
 * The nodes the bench starts (bench/launch.ts): one per service, or under `--groups` the service groups that
 * docker-compose.yaml and the Kubernetes base run, which this holds SERVICE_GROUPS to.
 */
import fs from "node:fs";
import path from "node:path";
import { SERVICE_GROUPS, nodesOf } from "../../../bench/launch";
import { parseArgs } from "../../../bench/cli";
import { ALL_SERVICES } from "../../../config";
import { COMPOSE_FILE, ROOT, readComposeFile } from "../../helpers/compose";

const sorted = (groups: string[][]) => groups.map(g => [...g].sort().join(",")).sort();
const ourGroups = sorted(Object.values(SERVICE_GROUPS));

describe("SERVICE_GROUPS", () => {
	it("are the SERVICES of docker-compose.yaml's FlashMart nodes", () => {
		const services = readComposeFile(COMPOSE_FILE).model.services ?? {};
		const groups = Object.values(services)
			.map(s => (s.environment as Record<string, unknown> | undefined)?.SERVICES)
			.filter((v): v is string => typeof v === "string")
			.map(v => v.split(",").map(x => x.trim()));
		expect(sorted(groups)).toEqual(ourGroups);
	});

	it("are the SERVICES of the Kubernetes base's node groups", () => {
		const dir = path.join(ROOT, "deploy", "kubernetes", "base", "config");
		const groups = fs
			.readdirSync(dir)
			.filter(f => f.endsWith(".env"))
			.map(f => fs.readFileSync(path.join(dir, f), "utf8").match(/^SERVICES=(.*)$/m)?.[1])
			.filter((v): v is string => v !== undefined)
			.map(v => v.split(",").map(x => x.trim()));
		expect(sorted(groups)).toEqual(ourGroups);
	});

	it("hold every service exactly once", () => {
		expect(Object.values(SERVICE_GROUPS).flat().sort()).toEqual([...ALL_SERVICES].sort());
	});
});

describe("nodesOf", () => {
	it("starts one node per service by default", () => {
		expect(nodesOf(["users", "products"], false)).toEqual([
			{ name: "users", services: ["users"] },
			{ name: "products", services: ["products"] }
		]);
	});

	it("starts the groups holding the services asked for, with only those of them", () => {
		expect(nodesOf(["products", "inventory", "orders", "payments"], true)).toEqual([
			{ name: "catalog", services: ["products"] },
			{ name: "commerce", services: ["inventory", "orders"] },
			{ name: "payments", services: ["payments"] }
		]);
	});

	it("gives a service of no group a node of its own", () => {
		expect(nodesOf(["users", "search"], true)).toEqual([
			{ name: "users", services: ["users"] },
			{ name: "search", services: ["search"] }
		]);
	});
});

describe("--groups", () => {
	it("is off unless asked for", () => {
		expect(parseArgs([]).groups).toBe(false);
		expect(parseArgs(["--groups"]).groups).toBe(true);
	});

	it("takes more gateways but no second instance of a grouped service", () => {
		expect(parseArgs(["--groups", "--nodes", "api=2"]).nodes).toEqual({ api: 2 });
		expect(() => parseArgs(["--groups", "--nodes", "api=2,products=2"])).toThrow(
			/--nodes may name api only, not products/
		);
	});
});
