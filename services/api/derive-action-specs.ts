/**
 * Reads the params and permissions of every action the contract publishes from the services' own definitions.
 * `npm run build` runs this file to write dist/services/api/action-specs.json, so a gateway node reads a small
 * JSON file instead of loading every service's code and its store adapter (a gateway runs alone in a cluster).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ServiceSchema } from "moleculer";
import { type AppConfig, loadConfig } from "../../config";
import type { ActionError, Permission } from "../../types/moleculer-ext";
import { createCartsService } from "../carts.service";
import { createInventoryService } from "../inventory/inventory.service";
import { createMediaService } from "../media.service";
import { createOrdersService } from "../orders/orders.service";
import { createPricingService } from "../pricing/pricing.service";
import { createProductsService } from "../products/products.service";
import { createUsersService } from "../users.service";
import { type ActionSpec, SPECS_FILE, actionSpecOf } from "./action-schema";
import { API_OPERATIONS, OPS_OPERATIONS } from "./contract";

/** An action's definition as the service declares it (its handler left out). */
export interface ActionDefinition {
	params?: Record<string, unknown>;
	permissions?: Permission;
	errors?: ActionError[];
}

/**
 * Every action of the services behind the contract, by full name, as their factories build them. The factories
 * get a configuration of their own (embedded, a throw-away data directory): what an action accepts does not depend
 * on where a node stores its data, and building the schemas must not touch a real store.
 */
export function actionDefinitions(): Record<string, ActionDefinition> {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-contract-"));
	try {
		const cfg: AppConfig = loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir });
		const schemas = [
			createUsersService(cfg),
			createProductsService(cfg),
			createMediaService(cfg),
			createInventoryService(cfg),
			createCartsService(cfg),
			createOrdersService(cfg),
			createPricingService(cfg)
		] as unknown as ServiceSchema[];
		const out: Record<string, ActionDefinition> = {};
		for (const schema of schemas) {
			const prefix = schema.version === undefined ? "" : `v${schema.version}.`;
			for (const [name, def] of Object.entries(schema.actions ?? {})) {
				if (def && typeof def === "object") {
					out[`${prefix}${schema.name}.${name}`] = def as ActionDefinition;
				}
			}
		}
		return out;
	} finally {
		fs.rmSync(dataDir, { recursive: true, force: true });
	}
}

/** The spec of every action an operation names, derived from its definition. */
export function deriveActionSpecs(
	definitions: Record<string, ActionDefinition> = actionDefinitions()
): Record<string, ActionSpec> {
	const specs: Record<string, ActionSpec> = {};
	for (const op of [...OPS_OPERATIONS, ...API_OPERATIONS]) {
		if (!op.action) continue;
		const def = definitions[op.action];
		if (!def) throw new Error(`${op.method} ${op.path}: no action ${op.action}`);
		specs[op.action] = actionSpecOf(op.action, def.params, def.permissions, def.errors);
	}
	return specs;
}

if (require.main === module) {
	const file = path.join(__dirname, SPECS_FILE);
	fs.writeFileSync(file, JSON.stringify(deriveActionSpecs(), null, "\t") + "\n");
	console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
