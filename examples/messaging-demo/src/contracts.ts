import { defineCommand, defineReply } from '@ferry/core';
import { z } from 'zod';

/** Sent by the order side to the kitchen's command channel. */
export const PlaceOrder = defineCommand(
  'PlaceOrder',
  z.object({
    orderId: z.string(),
    restaurant: z.string(),
    items: z.array(z.object({ name: z.string(), quantity: z.number().int().positive() })),
    total: z.string().regex(/^\d+\.\d{2}$/),
  }),
  'kitchenService',
);

/** The kitchen's reply. */
export const TicketCreated = defineReply(
  'TicketCreated',
  z.object({ orderId: z.string(), ticketId: z.string(), readyBy: z.string() }),
);

/** The channel the order side reads its replies from. */
export const ORDER_REPLIES = 'orderService.replies';
