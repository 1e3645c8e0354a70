import { installedVersion, satisfies } from "../../../../adapters/patches/target";

describe("patches' version ranges", () => {
	it.each([
		["0.15.2", "~0.15.2", true],
		["0.15.9", "~0.15.2", true],
		["0.15.1", "~0.15.2", false],
		["0.16.0", "~0.15.2", false],
		["2.29.3", "^2.29.3", true],
		["2.30.0", "^2.29.3", true],
		["3.0.0", "^2.29.3", false],
		["0.15.5", "^0.15.2", true],
		["0.16.0", "^0.15.2", false],
		["3.1.0", "3.1.0", true],
		["3.1.1", "3.1.0", false],
		["3.1.0-beta.1", "~3.1.0", true],
		["not a version", "~3.1.0", false],
		["3.1.0", ">=3.1.0", false]
	])("%s against %s: %s", (version, range, expected) => {
		expect(satisfies(version, range)).toBe(expected);
	});

	it("reads the installed version from the package's own package.json", () => {
		expect(installedVersion("moleculer")).toBe(require("moleculer").MOLECULER_VERSION);
		expect(installedVersion("no-such-package-anywhere")).toBeNull();
	});
});
