/**
 * The one entry point, used by `npm start`, `npm run dev`, `npm run repl`, the cluster script, the tests and the
 * Docker image. Without TRANSPORTER it starts the embedded default (every service in one process); with it, one
 * cluster node running the services named in SERVICES.
 *
 *   node dist/server.js            start (embedded, or a cluster node)
 *   node dist/server.js --repl     the same, with the Moleculer REPL and the operator commands of repl/commands/
 *   node dist/server.js --hot      hot reload of service files (development)
 *   node dist/server.js --join     a REPL-only node that joins a running cluster (no services)
 */
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { type AppConfig, ConfigError, loadConfig } from "./config";
import { resolveLogShipper } from "./adapters/logging";
import { prepareEmbeddedKeys } from "./adapters/keys";
import { LOG_FLUSH_TIMEOUT_MS, brokerOptions } from "./moleculer.config";
import { beginShutdown, shutdownTimeLeft } from "./middlewares/shutdown-deadline.middleware";
import { REPL_COMMANDS } from "./repl/commands";

const flags = new Set(process.argv.slice(2));

/** The last log lines get at least this, even when the deadline is spent. */
const MIN_LOG_FLUSH_MS = 200;

function readConfig(): AppConfig {
	try {
		if (flags.has("--join")) {
			// A REPL node: defaults to the local NATS and runs no services of its own.
			process.env.TRANSPORTER ??= "nats://127.0.0.1:4222";
			process.env.NODE_ID ??= `repl-${process.pid}`;
			process.env.METRICS_ENABLED = "false";
		}
		return loadConfig(process.env, { withoutServices: flags.has("--join") });
	} catch (err) {
		if (err instanceof ConfigError) {
			console.error(`FlashMart cannot start: ${err.message}`);
			process.exit(1);
		}
		throw err;
	}
}

/**
 * Resolves a service name to its file (compiled .js, or .ts under ts-node): `services/<name>.service`, or
 * `services/<name>/<name>.service` for a service that needs a folder; an absolute path is kept.
 */
function serviceFile(name: string): string {
	if (path.isAbsolute(name)) return require.resolve(name);
	const services = path.join(__dirname, "services");
	try {
		return require.resolve(path.join(services, `${name}.service`));
	} catch {
		return require.resolve(path.join(services, name, `${name}.service`));
	}
}

async function main(): Promise<void> {
	const cfg = readConfig();
	const logShipper = resolveLogShipper(cfg);
	const broker = new ServiceBroker({
		...brokerOptions(cfg, { logShipper }),
		hotReload: flags.has("--hot")
	});

	if (!flags.has("--join")) {
		// A first embedded start generates its JWT key pair in the thread pool while the service modules compile;
		// the services (the gateway and users read the keys when created) are created once it is there.
		const keysReady = prepareEmbeddedKeys(cfg);
		const files = cfg.services.map(serviceFile);
		for (const file of files) require(file);
		await keysReady;
		for (const file of files) broker.loadService(file);
	}

	let stoppingSince = 0;
	const stop = async (signal: string) => {
		if (stoppingSince > 0) {
			// Ctrl-C under npm arrives twice at once (the terminal's and npm's forwarded copy): only a later one forces.
			if (Date.now() - stoppingSince < 1000) return;
			broker.logger.warn(`${signal} again: exiting without waiting for in-flight requests`);
			process.exit(1);
		}
		stoppingSince = Date.now();
		broker.logger.info(`${signal} received: finishing in-flight requests, then stopping`);
		// Everything below shares one deadline, SHUTDOWN_TIMEOUT from now (middlewares/shutdown-deadline).
		beginShutdown(broker);
		const left = () => shutdownTimeLeft(broker, cfg.shutdownTimeout);
		let code = 0;
		try {
			// The gateway drains its HTTP requests first, then in-flight calls finish (middlewares/shutdown-deadline).
			await broker.stop();
		} catch (err) {
			console.error("Error while stopping", err);
			code = 1;
		}
		// Last: the lines of the shutdown itself are shipped too, in what is left of the deadline (Elasticsearch may
		// be down).
		await logShipper?.close(Math.min(LOG_FLUSH_TIMEOUT_MS, Math.max(MIN_LOG_FLUSH_MS, left())));
		process.exit(code);
	};
	process.on("SIGTERM", () => void stop("SIGTERM"));
	process.on("SIGINT", () => void stop("SIGINT"));

	try {
		await broker.start();
	} catch (err) {
		broker.logger.fatal("FlashMart failed to start", err);
		await broker.stop().catch(() => undefined);
		await logShipper?.close(LOG_FLUSH_TIMEOUT_MS);
		process.exit(1);
	}
	broker.logger.info(
		`FlashMart ${cfg.mode} node '${cfg.nodeID}' started` +
			(broker.getLocalService("api")
				? `; gateway on http://${cfg.gateway.host}:${cfg.gateway.port}`
				: "")
	);
	if (flags.has("--repl") || flags.has("--join")) {
		// moleculer-repl 0.8 reads its options from the broker's `replOptions` (docs/repl.md lists the commands).
		// Moleculer 0.15's typings give a command's action `string[]`; moleculer-repl 0.8 passes named arguments.
		broker.options.replOptions = {
			delimiter: "flashmart $",
			customCommands: REPL_COMMANDS as never
		};
		broker.repl();
	}
}

void main();
