/**
 * A nats-server whose JetStream refuses new streams on demand, as an account at its `max_streams` limit does: the
 * server runs with a config file that puts every client without credentials into one account, and the test moves
 * that account's limit with a config reload (SIGHUP), with no restart and no client disconnected.
 */
import fs from "node:fs";
import path from "node:path";
import { connect } from "nats";
import { type NatsServer, sleep, tempDir } from "../../scripts/lib/cluster";

export interface StreamLimit {
	/** nats-server flags for startNats / startCluster's natsArgs. */
	args: string[];
	/** Sets the account's max_streams (0: no limit) and waits until the server has reloaded it. */
	set(nats: NatsServer, maxStreams: number): Promise<void>;
	/** Caps the account at the streams it has now, so the next stream any client creates is refused. */
	refuseNewStreams(nats: NatsServer): Promise<string[]>;
	/** Stops and starts the server (NatsServer.restart) on the file, keeping the current limit. */
	restart(nats: NatsServer): Promise<void>;
}

/**
 * The config file. nats-server reloads JetStream from it: once the server runs, the file names the store directory
 * the `-sd` flag gave (a reload without it would turn JetStream off, one with another refuses to reload); at a
 * start it must not (the flag and the file both naming it is a "Duplicate 'store_dir'" error).
 */
const config = (maxStreams: number, storeDir?: string) =>
	[
		...(storeDir ? [`jetstream { store_dir: ${JSON.stringify(storeDir)} }`] : []),
		"accounts {",
		`  FLASHMART { jetstream { max_streams: ${maxStreams} }, users: [ { user: flashmart } ] }`,
		"}",
		// Clients without credentials (the nodes, the tests) are this account's user.
		"no_auth_user: flashmart",
		""
	].join("\n");

/** The names of the streams the account has. */
export async function streamNames(nats: NatsServer): Promise<string[]> {
	const nc = await connect({ servers: `127.0.0.1:${nats.port}` });
	try {
		const jsm = await nc.jetstreamManager();
		const names: string[] = [];
		for await (const name of jsm.streams.names()) names.push(name);
		return names.sort();
	} finally {
		await nc.close();
	}
}

/** How many messages a stream holds, or undefined when it does not exist. */
export async function streamMessages(nats: NatsServer, name: string): Promise<number | undefined> {
	const nc = await connect({ servers: `127.0.0.1:${nats.port}` });
	try {
		const jsm = await nc.jetstreamManager();
		return (await jsm.streams.info(name)).state.messages;
	} catch {
		return undefined;
	} finally {
		await nc.close();
	}
}

export function streamLimit(): StreamLimit {
	const file = path.join(tempDir("nats-conf"), "nats.conf");
	fs.writeFileSync(file, config(0));
	let current = 0;
	const reloads = (nats: NatsServer) =>
		nats.proc.output().split("Reloaded server configuration").length;
	const limit: StreamLimit = {
		args: ["-c", file],
		async set(nats, maxStreams) {
			const before = reloads(nats);
			const failures = nats.proc.output().split("Failed to reload").length;
			current = maxStreams;
			fs.writeFileSync(file, config(maxStreams, nats.storeDir));
			nats.proc.child.kill("SIGHUP");
			const deadline = Date.now() + 10000;
			while (reloads(nats) === before) {
				if (nats.proc.output().split("Failed to reload").length > failures)
					throw new Error(`nats-server refused the reload:\n${nats.proc.output().slice(-2000)}`);
				if (Date.now() > deadline)
					throw new Error(`nats-server did not reload:\n${nats.proc.output()}`);
				await sleep(50);
			}
		},
		async refuseNewStreams(nats) {
			const names = await streamNames(nats);
			// max_streams 0 is no limit: an account without a stream yet needs one to be at its limit.
			if (names.length === 0) {
				const nc = await connect({ servers: `127.0.0.1:${nats.port}` });
				await (
					await nc.jetstreamManager()
				).streams.add({ name: "PLACEHOLDER", subjects: ["placeholder"] });
				await nc.close();
				names.push("PLACEHOLDER");
			}
			await limit.set(nats, names.length);
			return names;
		},
		async restart(nats) {
			await nats.stop();
			fs.writeFileSync(file, config(current));
			await nats.restart();
		}
	};
	return limit;
}
