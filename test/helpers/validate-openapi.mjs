// Validates the OpenAPI document on standard input against the official OpenAPI 3.1 schema (an ESM-only library,
// so it runs in its own node process). Prints the errors as JSON and exits 1 when the document is invalid.
import { Validator } from "@seriousme/openapi-schema-validator";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const result = await new Validator().validate(JSON.parse(input));
process.stdout.write(JSON.stringify({ valid: result.valid, errors: result.errors ?? [] }));
process.exit(result.valid ? 0 : 1);
