/** The names of FlashMart's business metrics (`flashmart_*`); business-metrics.middleware.ts defines each once. */
export const METRIC = {
	AUTH_EVENTS: "flashmart.auth.events.total",
	RESERVATION_FAILURES: "flashmart.reservation.failures.total",
	ORDERS: "flashmart.orders.total",
	CHECKOUT_DURATION: "flashmart.checkout.duration.seconds",
	IDEMPOTENT_REPLAYS: "flashmart.idempotent.replays.total",
	PAYMENTS: "flashmart.payments.total",
	PAYMENT_DURATION: "flashmart.payment.duration.seconds",
	REVENUE: "flashmart.revenue.minor_units.total",
	INVENTORY_LOW: "flashmart.inventory.low.total",
	EVENTS_PUBLISHED: "flashmart.events.published.total",
	EVENTS_DEAD_LETTERED: "flashmart.events.dead_lettered.total",
	OUTBOX_PENDING: "flashmart.outbox.pending.events",
	OUTBOX_OLDEST_PENDING: "flashmart.outbox.oldest_pending.seconds",
	SALE_CHECKOUTS: "flashmart.sale.checkouts.total",
	SALE_UNITS_LEFT: "flashmart.sale.units_left",
	SALES_LIVE: "flashmart.sales.live",
	/** `reason`: overloaded (an orders node's bulkhead was full: 503), sold_out (known sold out: 409 at once). */
	CHECKOUT_REJECTIONS: "flashmart.checkout.rejections.total",
	HOLDS_OPEN: "flashmart.holds.open",
	HOLD_EXPIRIES: "flashmart.hold.expiries.total",
	/**
	 * `outcome`: a use taken at checkout (redeemed), refused at the take (exhausted, customer_limit, unknown: the limit
	 * was reached after the checkout's own check), or given back (released).
	 */
	DISCOUNT_REDEMPTIONS: "flashmart.discount.redemptions.total",
	/** Orders paid, net of discounts and of tax (total − taxTotal, shipping included), by currency. */
	NET_REVENUE: "flashmart.revenue.net.minor_units.total"
} as const;

/** Every `event` of flashmart_auth_events_total the users service counts (its audit trail). */
export const USER_AUTH_EVENTS = [
	"registered",
	"login_succeeded",
	"login_failed",
	"login_throttled",
	"register_throttled",
	"token_refreshed",
	"token_reuse_detected",
	"token_family_revoked",
	"logout",
	"password_changed",
	"role_changed",
	"user_disabled",
	"user_enabled"
] as const;

/** The `event` the gateway counts for a bearer token it refused. */
export const GATEWAY_AUTH_EVENTS = ["token_rejected"] as const;

/** Every `outcome` of flashmart_payments_total. */
export const PAYMENT_OUTCOMES = ["succeeded", "declined", "timeout", "error", "refunded"] as const;

/** Every `reason` of flashmart_reservation_failures_total. */
export const RESERVATION_FAILURE_REASONS = ["out_of_stock"] as const;

/** Every `outcome` of flashmart_sale_checkouts_total: a sale line's reservation taken, or why it was refused. */
export const SALE_CHECKOUT_OUTCOMES = [
	"admitted",
	"out_of_stock",
	"limit_exceeded",
	"not_started"
] as const;

/** Every `kind` of flashmart_hold_expiries_total: holds inventory let go because nobody paid in time. */
export const HOLD_EXPIRY_KINDS = ["sale", "order"] as const;

/** Every `outcome` of flashmart_discount_redemptions_total. */
export const DISCOUNT_REDEMPTION_OUTCOMES = [
	"redeemed",
	"released",
	"exhausted",
	"customer_limit",
	"unknown"
] as const;
