/** Fails the run at once, naming what is missing, instead of letting every test time out. */
import fs from "node:fs";
import { SERVER_JS, findTool } from "../../scripts/lib/cluster";

export default function globalSetup(): void {
	if (!fs.existsSync(SERVER_JS))
		throw new Error(`${SERVER_JS} is missing: 'npm test' builds it; run 'npm run build'`);
	findTool("nats-server", [
		"/usr/sbin/nats-server",
		"/usr/bin/nats-server",
		"/usr/local/bin/nats-server"
	]);
}
