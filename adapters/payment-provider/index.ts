/**
 * The payment provider port (port.ts) and the provider this configuration picks; the simulated provider
 * (simulated.ts) is the only implementation.
 */
import type { AppConfig } from "../../config";
import type { DbAdapter } from "../store";
import { SimulatedProvider } from "./simulated";

export * from "./port";
export { SIMULATED_LEDGER_STORE, SimulatedProvider } from "./simulated";

/**
 * The payment provider for this configuration: the simulated one on its ledger store, as no other is configurable
 * yet (a real provider adds a setting and a case here, and implements PaymentProvider).
 */
export function resolvePaymentProvider(
	_cfg: AppConfig["payments"],
	ledger: DbAdapter
): SimulatedProvider {
	return new SimulatedProvider(ledger);
}
