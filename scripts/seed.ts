/**
 * `npm run seed`: loads the demo catalog (lib/demo-catalog.ts: 240 products over 10 categories, with stock, and 4 sold in sizes and colours) and the
 * demo pricing (services/pricing/demo.ts: shipping methods, tax rates, a welcome code). With TRANSPORTER set it joins
 * that cluster and asks its products and pricing services; without, it runs the products, inventory and pricing
 * services on the embedded store under DATA_DIR (stop `npm start` first: NeDB files have one writer).
 * Idempotent: products whose sku exists, and pricing data already there, are left alone. Progress goes to the console.
 */
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { ConfigError, loadConfig } from "../config";
import { brokerOptions } from "../moleculer.config";

/** A service's file: `services/<name>.service`, or `services/<name>/<name>.service` for one with a folder. */
function serviceFile(name: string): string {
	const services = path.join(__dirname, "..", "services");
	try {
		return require.resolve(path.join(services, `${name}.service`));
	} catch {
		return require.resolve(path.join(services, name, `${name}.service`));
	}
}

async function main(): Promise<void> {
	process.env.SEED_DEMO = "false";
	process.env.METRICS_ENABLED = "false";
	process.env.NODE_ID ??= `seed-${process.pid}`;
	const cfg = loadConfig(process.env, { withoutServices: !!process.env.TRANSPORTER });
	const broker = new ServiceBroker(brokerOptions(cfg));
	if (!cfg.transporter) {
		for (const name of ["inventory", "products", "pricing"]) broker.loadService(serviceFile(name));
	}
	await broker.start();
	try {
		console.log(
			`Seeding the demo catalog (${cfg.transporter ? `cluster ${cfg.namespace}` : cfg.dataDir})...`
		);
		await broker.waitForServices(["products", "inventory"], 30_000);
		const result = (await broker.call("products.seedDemo", {}, { timeout: 120_000 })) as {
			created: number;
			existing: number;
		};
		console.log(`Done: ${result.created} products created, ${result.existing} already there.`);
		// A cluster without a pricing node (an earlier shape) gets the catalog only; its nodes have all announced
		// themselves within a few seconds of joining.
		if (cfg.transporter) await broker.waitForServices(["pricing"], 5000).catch(() => undefined);
		if (!broker.registry.hasService("pricing", null as never)) {
			console.log(
				"No pricing service in this cluster: shipping methods, tax rates and codes not seeded."
			);
			return;
		}
		await broker.waitForServices(["pricing"], 30_000);
		const pricing = (await broker.call("pricing.seedDemo", {})) as {
			shipping: number;
			taxRates: number;
			codes: number;
		};
		console.log(
			`Pricing: ${pricing.shipping} shipping methods, ${pricing.taxRates} tax rates, ${pricing.codes} codes added.`
		);
	} finally {
		await broker.stop();
	}
}

main().catch(err => {
	console.error(err instanceof ConfigError ? `Cannot seed: ${err.message}` : err);
	process.exit(1);
});
