-- The database ceiling for order placement: the statements orders.placement.do_order_create sends, in the
-- same order and the same transaction shape, run by pgbench through the same PgBouncer as the app.
--   pgbench -n -f loadtests/order_placement.pgbench.sql -D min_product=1 -D max_product=200 \
--           -D min_user=5 -D max_user=300 -c 8 -j 2 -T 15 postgres://shop@127.0.0.1:6432/<bench database>
-- (`make bench` fills the ranges from the database it seeded.) Two distinct products per order, 1-3 units.
\set p1 random(:min_product, :max_product - 1)
\set p2 :p1 + random(1, :max_product - :p1)
\set qty random(1, 3)
\set customer random(:min_user, :max_user)
BEGIN;
-- Lock pile-up: bounded wait for a product row (SET LOCAL through set_config, safe under transaction pooling).
SELECT set_config('lock_timeout', '2000ms', true);
-- Two buyers, one unit: lock the product rows in primary-key order, then read stock inside the lock.
SELECT id, sku, name, price, currency, is_active, stock_on_hand FROM shop_product
 WHERE id IN (:p1, :p2) ORDER BY id FOR UPDATE OF shop_product;
SELECT id, country_codes, is_default FROM orders_fulfilmentcentre;
INSERT INTO orders_order (customer_id, fulfilment_centre_id, status, version, currency, total, idempotency_key,
                          shipping_name, shipping_line1, shipping_line2, shipping_city, shipping_postal_code,
                          shipping_country, note, created_at, updated_at)
SELECT :customer, (SELECT id FROM orders_fulfilmentcentre WHERE is_default), 'pending_payment', 1, 'EUR',
       sum(price * :qty), 'pgbench-' || gen_random_uuid(), 'Bench Buyer', '1 Main St', '', 'Berlin', '10115',
       'DE', '', now(), now()
  FROM shop_product WHERE id IN (:p1, :p2)
RETURNING id AS order_id \gset
UPDATE orders_order SET number = 'SO-' || lpad(:order_id::text, 6, '0') WHERE id = :order_id;
INSERT INTO orders_orderline (order_id, product_id, sku, name, unit_price, quantity, line_total)
SELECT :order_id, id, sku, name, price, :qty, price * :qty FROM shop_product WHERE id IN (:p1, :p2) ORDER BY id;
-- Overselling: the CHECK (stock_on_hand >= 0) constraint backs these decrements up.
UPDATE shop_product SET stock_on_hand = stock_on_hand - :qty WHERE id = :p1;
UPDATE shop_product SET stock_on_hand = stock_on_hand - :qty WHERE id = :p2;
INSERT INTO payments_payment (order_id, idempotency_key, status, amount, currency, provider_reference, attempts,
                              last_error, created_at, updated_at)
SELECT id, 'shop-order-' || id, 'pending', total, currency, '', 0, '', now(), now()
  FROM orders_order WHERE id = :order_id;
COMMIT;
