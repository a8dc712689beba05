/**
 * PP-39 (spec §3.8 "SCSI reserve", §7.2): a reservation belongs to one array's
 * LU and is seen on every port of it; PPRC never carries it to the secondary,
 * neither while paired nor after terminate.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ReservationGate } from '../../../src/hosts/reservation-gate.js';
import { ReservationTable } from '../../../src/hosts/reservation-table.js';
import { block, closeAll, duplexPair, expectCode, peek, site } from './harness.js';

afterEach(closeAll);

describe('PPRC and SCSI reservations', () => {
  it('PP-39 a SCSI reserve held on P through port A is seen through every port of P; Sd shows none while paired or after terminate', async () => {
    const s = await site();
    await duplexPair(s);
    // Each array keeps its own reservations (as `lunrig serve` does, one table per pool).
    const e1 = new ReservationTable();
    const e2 = new ReservationTable();
    const p = s.e1.pool.volume('p');
    const sd = s.e2.pool.volume('s');
    const pLu = p.identity().uniqueId;
    const sdLu = sd.identity().uniqueId;

    e1.reserve(pLu, { host: 'node1', port: 'A' });
    // The holder writes through its port; the write is mirrored (DUPLEX).
    await new ReservationGate(p, e1, { host: 'node1', port: 'A' }).write(0, block(0x11));
    expect((await peek(s.e2, 's', 0, 4096)).equals(block(0x11))).toBe(true);
    // Another host is fenced on port A and on port B alike.
    for (const port of ['A', 'B']) {
      await expectCode(new ReservationGate(p, e1, { host: 'node2', port }).write(4096, block(0x22)), 'RESERVATION_CONFLICT');
    }
    expect(e1.status(pLu).scsi2).toEqual({ host: 'node1', port: 'A' });
    expect(e1.check(pLu, { host: 'node2', port: 'B' }, 'write')?.code).toBe('RESERVATION_CONFLICT');

    // The secondary: no reservation while paired (host I/O is refused by PPRC itself, not by a reservation)...
    expect(e2.status(sdLu)).toMatchObject({ scsi2: undefined, reservation: undefined, registrations: [] });
    expect(e2.check(sdLu, { host: 'node2', port: 'A' }, 'write')).toBeUndefined();
    await expectCode(new ReservationGate(sd, e2, { host: 'node2', port: 'A' }).read(0, 4096), 'PPRC_SECONDARY_NOT_ACCESSIBLE');

    // ...and none after terminate: any host can write it.
    await s.e1.pprc.terminate('p');
    expect(e2.status(sdLu)).toMatchObject({ scsi2: undefined, reservation: undefined, registrations: [] });
    expect(e2.check(sdLu, { host: 'node2', port: 'A' }, 'write')).toBeUndefined();
    await new ReservationGate(sd, e2, { host: 'node2', port: 'A' }).write(4096, block(0x33));
    expect((await peek(s.e2, 's', 4096, 4096)).equals(block(0x33))).toBe(true);
    // P's reservation is untouched by the terminate.
    await expectCode(new ReservationGate(p, e1, { host: 'node2', port: 'B' }).write(4096, block(0x22)), 'RESERVATION_CONFLICT');
  });
});
