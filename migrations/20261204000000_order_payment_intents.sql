-- Every Stripe PaymentIntent made for an order: the one created with the order and the one a
-- hosted Checkout page creates when the buyer pays there. The order's `payment_intent_id` is the
-- one it is paid with (the first to be authorised); the others are cancelled, so no buyer's card
-- stays authorised for an order that will not charge it.
CREATE TABLE order_payment_intents (
    payment_intent_id TEXT PRIMARY KEY,
    order_id          BIGINT      NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX order_payment_intents_order_idx ON order_payment_intents (order_id);

INSERT INTO order_payment_intents (payment_intent_id, order_id)
SELECT payment_intent_id, id FROM orders WHERE payment_intent_id IS NOT NULL;

