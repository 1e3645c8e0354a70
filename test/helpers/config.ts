/**
 * A node's configuration for in-process tests, read from the variables given (as a node reads its environment)
 * rather than from the test runner's own environment, so a suite states everything it depends on.
 */
import { type AppConfig, CONFIG_OPTION, loadConfig } from "../../config";

export function testConfig(env: Record<string, string | undefined> = {}): AppConfig {
	return loadConfig({ NODE_ENV: "test", ...env });
}

/** Broker options that hand `cfg` to service files the way brokerOptions() does (for `configOf(broker)`). */
export function withConfig<T extends object>(cfg: AppConfig, options: T): T {
	return Object.assign(options, { [CONFIG_OPTION]: cfg });
}
