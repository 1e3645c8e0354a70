/**
 * `as <role> call <action> [jsonParams]`: calls an action as a user of that role, so admin actions work without a
 * hand-written meta. Parameters as JSON, or as `--name value` flags like the built-in `call`.
 */
import type { ServiceBroker } from "moleculer";
import type { Role } from "../../types/moleculer-ext";
import { ROLES, type ReplArgs, type ReplCommand, callAs, report } from "../operator";

/** The call's parameters: the JSON argument, or the flags (`--user` picks the user id and is not a parameter). */
function paramsOf(args: ReplArgs): object {
	if (typeof args.jsonParams === "string") {
		const parsed = JSON.parse(args.jsonParams) as unknown;
		if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
			throw new Error("jsonParams must be a JSON object");
		return parsed;
	}
	const { user: _user, ...flags } = args.options;
	return flags;
}

export const asCommand: ReplCommand = {
	command: "as <role> <verb> <actionName> [jsonParams]",
	description:
		'Call an action as a user of a role: as admin call inventory.get \'{"productId":"..."}\' (or --productId ...; --user <id> sets the user id)',
	allowUnknownOptions: true,
	async action(broker: ServiceBroker, args: ReplArgs) {
		await report(async () => {
			const role = String(args.role) as Role;
			if (!ROLES.includes(role)) throw new Error(`role must be one of ${ROLES.join(", ")}`);
			if (args.verb !== "call") throw new Error("usage: as <role> call <action> [jsonParams]");
			const userId = typeof args.options.user === "string" ? args.options.user : undefined;
			return callAs(broker, role, String(args.actionName), paramsOf(args), userId);
		});
	}
};
