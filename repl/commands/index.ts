/** The operator commands the REPL adds to moleculer-repl's own (server.ts `--repl` and `--join`). */
import type { ReplCommand } from "../operator";
import { asCommand } from "./as";
import { deadlettersCommand } from "./deadletters";
import { ledgerCommand } from "./ledger";
import { orderCommand } from "./order";
import { replayCommand } from "./replay";
import { saleCommand } from "./sale";
import { stockCommand } from "./stock";

export const REPL_COMMANDS: ReplCommand[] = [
	orderCommand,
	stockCommand,
	saleCommand,
	ledgerCommand,
	deadlettersCommand,
	replayCommand,
	asCommand
];
