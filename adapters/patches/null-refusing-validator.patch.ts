/**
 * Moleculer's fastest-validator (1.19) with `null` refused for every rule that does not say `nullable: true`.
 * Out of the box `optional: true` lets `null` through, so `{ category: null }` reached the stores. The option
 * `considerNullAsAValue: true` does not help: it makes fastest-validator skip the check of `null` for every rule,
 * required ones included, unless a rule says `nullable: false`. So this validator wraps the one place where
 * fastest-validator decides about absent values (`wrapRequiredCheckSourceCode`, called for every rule, nested
 * ones too) with a `null` check first: a `null` is a 422 naming the field, defaults are never applied to it.
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
}

const proto = (FastestValidatorLib as unknown as { prototype: ValidatorInternals }).prototype;
if (
	typeof proto.wrapRequiredCheckSourceCode !== "function" ||
	typeof proto.makeError !== "function"
) {
	throw new Error(
		"fastest-validator no longer has wrapRequiredCheckSourceCode/makeError: review adapters/patches/null-refusing-validator.patch.ts"
	);
}

/** fastest-validator refusing `null` unless a rule says `nullable: true`. */
class NullRefusingFastestValidator extends (FastestValidatorLib as unknown as new (
	opts?: object
) => ValidatorInternals) {
	constructor(opts: { messages?: Record<string, string> } = {}) {
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
