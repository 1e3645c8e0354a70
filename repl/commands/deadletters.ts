/** `deadletters`: the durable events a consumer group gave up on, newest last. */
import type { ServiceBroker } from "moleculer";
import { deadLetterStore } from "../../adapters/events";
import { type ReplArgs, type ReplCommand, report } from "../operator";

export const deadlettersCommand: ReplCommand = {
	command: "deadletters",
	description:
		"Durable events a consumer gave up on (after EVENT_MAX_RETRIES retries), newest last",
	options: [{ option: "-l, --limit <n>", description: "how many, newest (default 50)" }],
	async action(broker: ServiceBroker, args: ReplArgs) {
		const limit = Number(args.options.limit ?? 50);
		await report(async () => {
			if (!Number.isInteger(limit) || limit < 1)
				throw new Error("--limit must be a positive integer");
			return deadLetterStore(broker).list(limit);
		});
	}
};
