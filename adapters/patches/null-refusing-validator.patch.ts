/**
 * Moleculer's fastest-validator (1.19) with `null` refused for every rule that does not say `nullable: true`.
 * Out of the box `optional: true` lets `null` through, so `{ category: null }` reached the stores. The option
 * `considerNullAsAValue: true` does not help: it makes fastest-validator skip the check of `null` for every rule,
 * required ones included, unless a rule says `nullable: false`. So this validator wraps the one place where
 * fastest-validator decides about absent values (`wrapRequiredCheckSourceCode`, called for every rule, nested
 * ones too) with a `null` check first: a `null` is a 422 naming the field, defaults are never applied to it.
 *
 * It also skips a rule's `custom` checker when an optional field is absent. fastest-validator runs it anyway and
 * assigns what it returns, so an absent field came out as a key holding `undefined`: a PATCH that spread its params
 * over the stored document erased every optional field with a checker that it did not send (a discount's
 * validity window was lost when only its value changed).
 */
import FastestValidatorLib from "fastest-validator";
import { Validators } from "moleculer";

/** The error type a `null` gets (`data[].type` of the 422). */
export const NULL_NOT_ALLOWED = "nullNotAllowed";

interface CompiledRule {
	schema: { nullable?: boolean; type?: string };
	messages: Record<string, string>;
}

interface ValidatorInternals {
	wrapRequiredCheckSourceCode(
		rule: CompiledRule,
		innerSrc: string,
		context: unknown,
		resVar?: string
	): string;
	makeError(opts: { type: string; actual: string; messages: Record<string, string> }): string;
	makeCustomValidator(opts: CustomValidatorOptions): string;
}

interface CustomValidatorOptions {
	vName?: string;
	schema: { optional?: boolean };
}

const proto = (FastestValidatorLib as unknown as { prototype: ValidatorInternals }).prototype;
if (
	typeof proto.wrapRequiredCheckSourceCode !== "function" ||
	typeof proto.makeError !== "function" ||
	typeof proto.makeCustomValidator !== "function"
) {
	throw new Error(
		"fastest-validator no longer has wrapRequiredCheckSourceCode/makeError/makeCustomValidator: review adapters/patches/null-refusing-validator.patch.ts"
	);
}

/** fastest-validator refusing `null` unless a rule says `nullable: true`. */
class NullRefusingFastestValidator extends (FastestValidatorLib as unknown as new (
	opts?: object
) => ValidatorInternals) {
	constructor(
		opts: { messages?: Record<string, string>; useNewCustomCheckerFunction?: boolean } = {}
	) {
		super({
			...opts,
			messages: { [NULL_NOT_ALLOWED]: "The '{field}' field must not be null.", ...opts.messages }
		});
	}

	override wrapRequiredCheckSourceCode(
		rule: CompiledRule,
		innerSrc: string,
		context: unknown,
		resVar?: string
	): string {
		const src = super.wrapRequiredCheckSourceCode(rule, innerSrc, context, resVar);
		if (rule.schema.nullable === true || rule.schema.type === "forbidden") return src;
		const refuse = this.makeError({
			type: NULL_NOT_ALLOWED,
			actual: "value",
			messages: rule.messages
		});
		return `if (value === null) { ${refuse} } else { ${src} }`;
	}

	override makeCustomValidator(opts: CustomValidatorOptions): string {
		const src = super.makeCustomValidator(opts);
		if (!src || opts.schema.optional !== true) return src;
		// `vName` is the field's own expression (`parent["startsAt"]`), "value" when fastest-validator gives none.
		return `if (${opts.vName ?? "value"} !== undefined) { ${src} }`;
	}
}

/**
 * A check of `schema` as the broker's validator makes one (null refused, custom checkers called as lib/validation
 * writes them), for a value that is not an action's params as a whole: the answer is true or the errors.
 */
export function compileCheck(schema: object): (value: unknown) => true | unknown[] {
	const validator = new NullRefusingFastestValidator({ useNewCustomCheckerFunction: true });
	return (
		validator as unknown as { compile(s: object): (value: unknown) => true | unknown[] }
	).compile(schema);
}

/** Moleculer's "Fastest" validator on the null-refusing fastest-validator; give an instance to `validator`. */
export class NullRefusingValidator extends Validators.Fastest {
	constructor(opts: object = {}) {
		super(opts as never);
		(this as unknown as { validator: unknown }).validator = new NullRefusingFastestValidator(
			(this as unknown as { opts: object }).opts
		);
	}
}
