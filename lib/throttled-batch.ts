/**
 * Announcements of changed ids, at most one per window: the first change of a quiet period is announced at once (an
 * isolated change is seen everywhere as before), the changes that follow within `windowMs` together at the window's
 * end, and so on while changes keep coming. Under load that is one message per window instead of one per change;
 * nothing is announced later than one window after it happened.
 */
export class ThrottledBatch<R = void> {
	private pending = new Set<string>();
	private timer: NodeJS.Timeout | null = null;

	constructor(
		private readonly windowMs: number,
		private readonly send: (ids: string[]) => R
	) {}

	/**
	 * Announces `ids` now or at the window's end. Answers what `send` answered when they went out at once (a caller
	 * can wait for the announcement before it answers its own client), undefined when they wait for the window.
	 */
	add(ids: string[]): R | undefined {
		if (this.timer) {
			for (const id of ids) this.pending.add(id);
			return undefined;
		}
		const sent = this.send([...new Set(ids)]);
		this.arm();
		return sent;
	}

	/** Announces what is pending now and ends the window (e.g. when the service stops). */
	flush(): void {
		if (this.timer) clearTimeout(this.timer);
		this.timer = null;
		this.sendPending();
	}

	private arm(): void {
		this.timer = setTimeout(() => {
			this.timer = null;
			if (this.sendPending()) this.arm();
		}, this.windowMs);
		this.timer.unref();
	}

	private sendPending(): boolean {
		if (this.pending.size === 0) return false;
		const ids = [...this.pending];
		this.pending.clear();
		this.send(ids);
		return true;
	}
}
