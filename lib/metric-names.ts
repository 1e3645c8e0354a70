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
	EVENTS_DEAD_LETTERED: "flashmart.events.dead_lettered.total"
} as const;
