/** Unit tests run in-process; integration and e2e tests spawn real nodes (dist/) over a real nats-server. */
module.exports = {
	testEnvironment: "node",
	roots: ["<rootDir>/test"],
	testMatch: ["**/*.spec.ts"],
	transform: { "^.+\\.ts$": "ts-jest" },
	globalSetup: "<rootDir>/test/helpers/global-setup.ts",
	testTimeout: 60000,
	// Integration suites each run a whole cluster: one file at a time on a 2-core machine.
	maxWorkers: 1
};
